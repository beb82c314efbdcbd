"""``efficiency``: Tables 3.5 / 4.6 (complexity, meta device; parameters per reading of the text), 3.6 / 5.8
(timing) → reports."""

from kedro.pipeline import Node, Pipeline

from seg_pipelines.pipelines.efficiency import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.complexity_table_3_5,
                "params:efficiency",
                ["efficiency_table_3_5", "efficiency_table_3_5_readings"],
                name="complexity_table_3_5",
            ),
            Node(
                nodes.complexity_table_4_6,
                "params:efficiency",
                ["efficiency_table_4_6", "efficiency_table_4_6_readings"],
                name="complexity_table_4_6",
            ),
            Node(nodes.timing_table_3_6, "params:efficiency", "efficiency_table_3_6", name="timing_table_3_6"),
            Node(nodes.ovss_table_5_8, "params:efficiency", "efficiency_table_5_8", name="ovss_efficiency_table_5_8"),
            Node(
                nodes.report_tables,
                [
                    "efficiency_table_3_5",
                    "efficiency_table_3_6",
                    "efficiency_table_4_6",
                    "efficiency_table_5_8",
                    "efficiency_table_3_5_readings",
                    "efficiency_table_4_6_readings",
                ],
                [
                    "efficiency_table_3_5_markdown",
                    "efficiency_table_3_6_markdown",
                    "efficiency_table_4_6_markdown",
                    "efficiency_table_5_8_markdown",
                    "efficiency_metrics",
                ],
                name="report_efficiency_tables",
            ),
        ]
    )
