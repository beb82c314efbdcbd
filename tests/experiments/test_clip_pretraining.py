"""Tiny-CLIP pretraining (experiments.clip_pretraining): caption sampling, contrastive and
region-phrase losses, schedule, probes, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME, CONCEPTS
from seg_pipelines.experiments.clip_pretraining import (
    CaptionedImages,
    ClipPretrainingConfig,
    attribute_targets,
    caption_token_report,
    clip_contrastive_loss,
    clip_from_state_dict,
    compose_region_caption,
    concept_phrase,
    describe_concept,
    fit_caption,
    pixel_accuracy_by_group,
    plural,
    pretrain_clip,
    region_embeddings,
    region_phrase_loss,
    retrieval_recall_at_1,
    text_context_length,
    warmup_cosine_lr,
)
from seg_pipelines.prompts.prompt_set import clip_token_count


def test_contrastive_loss_matches_cross_entropy_and_merges_duplicate_captions():
    torch.manual_seed(0)
    image, text = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(10.0)
    logits = scale * image @ text.t()
    expected = 0.5 * (F.cross_entropy(logits, torch.arange(4)) + F.cross_entropy(logits.t(), torch.arange(4)))
    torch.testing.assert_close(clip_contrastive_loss(image, text, scale, torch.arange(4)), expected)
    # captions 0 and 1 identical: each image's target is split 50/50 over both
    ids = torch.tensor([0, 0, 1, 2])
    targets = torch.tensor([[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    manual = 0.5 * (
        -(targets * logits.log_softmax(1)).sum(1).mean() - (targets * logits.t().log_softmax(1)).sum(1).mean()
    )
    torch.testing.assert_close(clip_contrastive_loss(image, text, scale, ids), manual)


def test_warmup_cosine_schedule():
    config = ClipPretrainingConfig(steps=110, lr=1e-3, min_lr=1e-5, warmup_steps=10)
    assert warmup_cosine_lr(0, config) == pytest.approx(1e-4)
    assert warmup_cosine_lr(9, config) == pytest.approx(1e-3)
    assert warmup_cosine_lr(60, config) == pytest.approx(1e-5 + 0.5 * (1e-3 - 1e-5))
    assert warmup_cosine_lr(110, config) == pytest.approx(1e-5)


def test_unseen_concepts_are_never_named_and_names_follow_probability():
    config = ClipPretrainingConfig()
    rng = np.random.default_rng(0)
    lime, orange = CONCEPT_BY_NAME["lime"], CONCEPT_BY_NAME["orange"]
    assert lime.unseen and not orange.unseen
    lime_phrases = [concept_phrase(lime, rng, config) for _ in range(300)]
    assert not any("lime" in phrase for phrase in lime_phrases)
    assert all(phrase.endswith(lime.generic) for phrase in lime_phrases)
    named = np.mean([concept_phrase(orange, rng, config).endswith(" orange") for _ in range(2000)])
    assert named == pytest.approx(config.name_probability_thing, abs=0.05)


def test_region_caption_mentions_large_concepts_largest_first():
    config = ClipPretrainingConfig(
        region_min_fraction=0.2,
        max_phrases=2,
        attribute_probability={},
        name_probability_thing=1.0,
        name_probability_stuff=1.0,
    )
    rng = np.random.default_rng(1)
    sky, sun, cloud = (CONCEPT_BY_NAME[n].id for n in ("sky", "sun", "cloud"))
    caption = compose_region_caption({sky: 0.5, sun: 0.3, cloud: 0.1}, rng, config)
    assert caption == "a photo of sky and a yellow sun."  # colour is the fallback attribute of things
    assert compose_region_caption({cloud: 0.1}, rng, config) is None


def test_description_form_captions_read_like_llm_descriptions_and_never_name_unseen_concepts():
    config = ClipPretrainingConfig(
        description_caption_probability=1.0,
        attribute_probability={"colour": 1.0, "shape": 1.0},
        name_probability_thing=1.0,
        name_probability_stuff=1.0,
    )
    sky, orange, lime, table = (CONCEPT_BY_NAME[n] for n in ("sky", "orange", "lime", "table"))
    words = orange.attribute_words()
    adjectives = [words["shape"], words["colour"]]
    joined = f"{words['shape']} and {words['colour']}"
    assert describe_concept(orange, adjectives, "orange", "is") == f"An orange is {joined}."
    assert describe_concept(orange, adjectives, "orange", "the_is") == f"The orange is {joined}."
    assert describe_concept(orange, adjectives, "orange", "usually") == f"An orange is usually {joined}."
    assert describe_concept(orange, adjectives, "orange", "plural") == f"Oranges are {joined}."
    assert describe_concept(orange, adjectives, "orange", "per_attribute") == (
        f"An orange is {words['shape']}. An orange is {words['colour']}."
    )
    assert describe_concept(orange, adjectives, "orange", "lies_on", "table") == (
        f"A {words['shape']}, {words['colour']} orange lies on the table."
    )
    assert describe_concept(sky, [sky.colour_word], "sky", "is") == f"Sky is {sky.colour_word}."  # stuff: no article
    assert describe_concept(sky, [sky.colour_word], "sky", "plural") == f"Sky is {sky.colour_word}."
    assert plural("bus") == "buses" and plural("cherry") == "cherries" and plural("stop sign") == "stop signs"
    with pytest.raises(ValueError, match="phrasing"):
        describe_concept(orange, adjectives, "orange", "poem")

    rng = np.random.default_rng(0)
    captions = [compose_region_caption({orange.id: 0.5, sky.id: 0.3}, rng, config) for _ in range(400)]
    headers = [c for c in captions if c.startswith("a photo of an orange and sky.")]
    assert len(headers) / len(captions) == pytest.approx(config.description_header_probability, abs=0.08)
    for phrase in (f"The orange is {joined}.", f"Oranges are {joined}.", f"An orange is {words['colour']}."):
        assert any(phrase in c for c in captions), phrase  # several phrasings occur
    # the host stuff under a thing is named when it is in the crop (the lime sits on tables)
    assert "table" in lime.hosts
    hosted = [compose_region_caption({lime.id: 0.5, table.id: 0.4}, rng, config) for _ in range(400)]
    assert any(f"lies on the {table.name}" in c for c in hosted)
    unseen = [compose_region_caption({lime.id: 0.6, sky.id: 0.3}, rng, config) for _ in range(300)]
    assert not any("lime" in c.lower() for c in unseen)  # unseen: only its generic noun and attribute words
    assert any(lime.generic in c.lower() for c in unseen)
    mixed = ClipPretrainingConfig(description_caption_probability=0.5, description_header_probability=0.0)
    forms = [not compose_region_caption({orange.id: 0.6}, rng, mixed).startswith("a photo") for _ in range(2000)]
    assert np.mean(forms) == pytest.approx(0.5, abs=0.05)
    plain = [compose_region_caption({orange.id: 0.6}, rng, ClipPretrainingConfig()) for _ in range(200)]
    assert not any(" is " in c for c in plain)


def test_captions_fit_the_text_context_by_whole_phrases_and_the_token_report_counts_what_truncation_loses():
    caption = "a photo of a big red ball, a small green lime and grass. The lime is small and green. Grass is green."
    assert fit_caption(caption, 200) == (caption, "whole")
    fitted, how = fit_caption(caption, 20)
    assert how == "phrases dropped" and clip_token_count(fitted) <= 20
    assert caption.startswith(fitted[:-1])  # a prefix of whole phrases, closed with a full stop
    assert fit_caption("supercalifragilistic " * 30, 10)[1] == "cut"
    counts = [clip_token_count(c) for c in ("a b c d e f g h i j", "a b")]
    assert counts == [10, 2]
    report = caption_token_report(["a b c d e f g h i j", "a b"], context_length=8)  # 6 content tokens
    assert report["share_of_captions_over"] == 0.5
    assert report["share_of_tokens_lost"] == pytest.approx(4 / 12)
    assert text_context_length("TinyCLIP-ViT-8-96") == 77 and text_context_length("TinyCLIP-ViT-8-96-ctx32") == 32


def test_retrieval_recall_counts_identical_captions_as_hits():
    image = torch.eye(3)
    text = torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    result = retrieval_recall_at_1(image, text, ["a", "b", "c"])
    assert result["image_to_text_recall_at_1"] == pytest.approx(1 / 3)
    assert retrieval_recall_at_1(image, text, ["a", "b", "b"])["image_to_text_recall_at_1"] == 1.0
    assert result["chance_recall_at_1"] == pytest.approx(1 / 3)
    # with two identical captions a random pick hits 1/3 (for "a") or 2/3 (for each "b")
    assert retrieval_recall_at_1(image, text, ["a", "b", "b"])["chance_recall_at_1"] == pytest.approx(5 / 9)


def test_pixel_accuracy_by_group_and_attribute_targets():
    target = torch.tensor([[0, 0, 1, 255], [2, 2, 2, 1]])
    prediction = torch.tensor([[0, 1, 1, 0], [2, 0, 2, 0]])
    result = pixel_accuracy_by_group(prediction, target, 255, {"head": [0, 1], "tail": [2]})
    assert result["pixel_accuracy"] == pytest.approx(4 / 7)
    assert result["pixel_accuracy_head"] == pytest.approx(2 / 4)
    assert result["pixel_accuracy_tail"] == pytest.approx(2 / 3)
    assert result["mean_class_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 2 / 3) / 3)
    labels = torch.tensor([[CONCEPT_BY_NAME["lime"].id, CONCEPT_BY_NAME["sky"].id, 255]])
    shapes, words = attribute_targets(labels, "shape", CONCEPTS, 255)
    assert words[shapes[0, 0]] == "round" and shapes[0, 1] == 255 and shapes[0, 2] == 255  # stuff has no shape


def _toy_pairs(count: int = 16, size: int = 32) -> CaptionedImages:
    colours = {"red": (230, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 230), "yellow": (240, 230, 20)}
    images, captions = [], []
    for index in range(count):
        word = list(colours)[index % 4]
        image = torch.tensor(colours[word], dtype=torch.uint8).view(3, 1, 1).expand(3, size, size).clone()
        image[:, index % size] = 128
        images.append(image)
        captions.append(f"a photo of a {word} thing number {index}.")
    return CaptionedImages(torch.stack(images), torch.full((count, size, size), 255), captions)


def test_region_embeddings_match_a_per_region_loop():
    torch.manual_seed(0)
    dense = torch.randn(2, 5, 4, 4)  # patch 4 on a 16x16 label
    labels = torch.randint(0, 3, (2, 16, 16))
    labels[0, :4, :4] = 255
    labels[1, 8:, :] = 7
    embeddings, image_index, concept_index = region_embeddings(dense, labels, 8, 255, min_patches=0.5, max_regions=100)
    expected = {}
    for b in range(2):
        for c in range(8):
            mask = (labels[b] == c).float()
            weights = F.avg_pool2d(mask[None, None], 4)[0, 0]  # share of each patch covered by c
            if weights.sum() >= 0.5:
                expected[(b, c)] = (torch.einsum("hw,dhw->d", weights, dense[b]) / weights.sum(), float(weights.sum()))
    assert {(int(b), int(c)) for b, c in zip(image_index, concept_index)} == set(expected)
    for embedding, b, c in zip(embeddings, image_index.tolist(), concept_index.tolist()):
        torch.testing.assert_close(embedding, expected[(b, c)][0])
    areas = [expected[(b, c)][1] for b, c in zip(image_index.tolist(), concept_index.tolist())]
    assert areas == sorted(areas, reverse=True)  # largest first
    top, _, _ = region_embeddings(dense, labels, 8, 255, min_patches=0.5, max_regions=2)
    torch.testing.assert_close(top, embeddings[:2])
    # the mean over every patch of an image is the avg-pooled image embedding
    whole, _, _ = region_embeddings(dense[:1], torch.zeros(1, 16, 16, dtype=torch.long), 8, 255, 1.0, 10)
    torch.testing.assert_close(whole[0], dense[0].mean(dim=(1, 2)))


def test_region_phrase_loss_reaches_the_dense_features_and_the_text_tower():
    torch.manual_seed(0)
    import open_clip

    from seg_pipelines.models.ovss.clip import CLIPDenseEncoder, load_clip

    config = ClipPretrainingConfig(image_size=32, region_loss_weight=1.0, region_min_patches=1.0)
    model = load_clip(config.model_name, None, image_size=32)
    encoder = CLIPDenseEncoder(model, model_name=config.model_name)
    tokenizer = open_clip.get_tokenizer(config.model_name, context_length=model.context_length)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    labels[:, :, 16:] = CONCEPT_BY_NAME["grass"].id
    labels[1, 8:24, 8:24] = CONCEPT_BY_NAME["lime"].id
    dense = encoder(encoder.normalize(torch.rand(2, 3, 32, 32))).dense
    loss = region_phrase_loss(model, encoder, tokenizer, dense, labels, np.random.default_rng(0), config, 255)
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert model.visual.conv1.weight.grad.abs().sum() > 0
    assert model.token_embedding.weight.grad.abs().sum() > 0


def test_pretraining_lowers_the_loss_and_resumes(tmp_path):
    torch.set_num_threads(1)
    data = _toy_pairs()
    config = ClipPretrainingConfig(
        image_size=32,
        steps=24,
        batch_size=16,
        lr=2e-3,
        warmup_steps=2,
        original_caption_probability=1.0,
        log_interval=4,
        checkpoint_interval=12,
    )
    model, curve = pretrain_clip(data, config, checkpoint_dir=tmp_path, show_progress=False)
    assert curve[-1]["loss"] < 0.8 * curve[0]["loss"]
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    assert checkpoint["step"] == 24
    resumed, resumed_curve = pretrain_clip(data, config, checkpoint_dir=tmp_path, show_progress=False)
    assert resumed_curve == curve
    for key, value in model.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value)
    rebuilt = clip_from_state_dict({"model_name": config.model_name, "image_size": 32}, model.state_dict())
    torch.testing.assert_close(rebuilt.visual.proj, model.visual.proj)
    other = CaptionedImages(data.images.flip(-2), data.labels, data.captions[::-1], data.ignore_index)
    _, other_curve = pretrain_clip(other, config, checkpoint_dir=tmp_path, show_progress=False)
    assert other_curve != curve  # other training data: trained afresh, not resumed


def test_pretraining_data_are_the_prepared_index_samples(tmp_path):
    """The tiny CLIP and SAM train on the prepared index's train split (so a sample the preparation skipped
    stays out, and Kedro-Viz draws ``models`` after ``primary``); an index of another dataset is refused."""
    from seg_pipelines.datasets.base import DatasetError
    from seg_pipelines.datasets.factory import create_reader
    from seg_pipelines.experiments.clip_pretraining import load_captioned_split
    from seg_pipelines.experiments.data_preparation import (
        build_prepared_index,
        prepare_raw_dataset,
        prepared_sample_ids,
    )
    from seg_pipelines.experiments.sam_pretraining import load_region_masks

    world = {"seed": 0, "image_size": 32, "n_train": 4, "n_val": 2}
    manifest = prepare_raw_dataset({"family": "synthetic", "root": str(tmp_path), "splits": ["train", "val"]}, world)
    reader = create_reader("synthetic", tmp_path)
    samples = reader.list_samples("train")
    full_index, _ = build_prepared_index(manifest, "raise")
    index = full_index[full_index["sample_id"] != samples[-1].sample_id]  # as if preparation had skipped it
    kept = prepared_sample_ids(manifest, index, "train")
    assert kept == {s.sample_id for s in samples[:3]}  # the fourth training image was not prepared
    assert len(load_captioned_split(reader, "train", sample_ids=kept).captions) == 3
    assert len(load_captioned_split(reader, "train").captions) == 4
    assert len(load_region_masks(reader, "train", 32, 1, sample_ids=kept).images) == 3
    assert len(load_region_masks(reader, "train", 32, 1).images) == 4
    with pytest.raises(DatasetError, match="no samples of split 'test'"):
        prepared_sample_ids(manifest, index, "test")
    elsewhere = index.assign(image_path=[f"/elsewhere/{i}.jpg" for i in range(len(index))])
    with pytest.raises(DatasetError, match="outside the manifest's root"):
        prepared_sample_ids(manifest, elsewhere, "train")
