"""The date task, the encoder-decoder, the padding mask and the training loop."""

import datetime
import random

import pytest
import torch

from attention_kit.checks import unit03
from attention_kit.data import (
    DATE_FORMATS,
    SOURCE_VOCAB,
    TARGET_STEPS,
    TARGET_VOCAB,
    CharVocab,
    date_datasets,
    date_tensors,
    format_date,
    random_dates,
)
from attention_kit.masks import padding_mask
from attention_kit.models import (
    Seq2Seq,
    encoder_summary,
    greedy_decode,
    seq2seq_loss,
    translate,
)
from attention_kit.train import History, evaluating, fit, random_batches

MONDAY = datetime.date(2026, 11, 23)


def test_formats_of_a_known_date():
    written = [format_date(MONDAY, style) for style in range(len(DATE_FORMATS))]
    for expected in (
        "Monday, November 23, 2026",
        "23 nov 2026",
        "23.11.2026",
        "20261123",
    ):
        assert expected in written
    assert format_date(datetime.date(2001, 3, 1), 10) == "1st of March, 2001"
    assert format_date(datetime.date(2001, 3, 12), 10) == "12th of March, 2001"
    assert format_date(datetime.date(2001, 3, 22), 10) == "22nd of March, 2001"


def test_every_written_date_means_one_date():
    rng = random.Random(0)
    meaning = {}
    for _ in range(20_000):
        d = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(73_000))
        for style in range(len(DATE_FORMATS)):
            text = format_date(d, style)
            assert meaning.setdefault(text, d) == d, f"{text!r} is ambiguous"


def test_weekdays_are_right():
    with_weekday = [
        i for i, f in enumerate(DATE_FORMATS) if "eekday" in f or "Wkd" in f
    ]
    assert len(with_weekday) == 4
    rng = random.Random(3)
    for _ in range(200):
        d = datetime.date(1900, 1, 1) + datetime.timedelta(days=rng.randrange(73_000))
        for style in with_weekday:
            first_word = format_date(d, style).split()[0].strip(",").lower()
            assert d.strftime("%A").lower().startswith(first_word)


def test_datasets_are_seeded_sized_and_disjoint():
    train, test = date_datasets(2000, 300, seed=5)
    assert len(train) == 2000 and len(test) == 300
    assert not {s for s, _ in train} & {s for s, _ in test}
    assert (train, test) == date_datasets(2000, 300, seed=5)
    assert all(len(iso) == 10 and iso[4] == iso[7] == "-" for _, iso in train)


def test_vocabularies_round_trip():
    pairs = random_dates(50, seed=1)
    ids, lengths, targets = date_tensors(pairs)
    assert SOURCE_VOCAB.decode(ids) == [s for s, _ in pairs]
    assert TARGET_VOCAB.decode(targets) == [t for _, t in pairs]
    assert (ids[torch.arange(ids.shape[1]) >= lengths[:, None]] == 0).all()
    assert targets.shape == (50, 11) and (targets[:, -1] == TARGET_VOCAB.EOS).all()
    assert targets.shape[1] == TARGET_STEPS  # the decoders' default number of steps


def test_encode_with_end_and_decode_stops_at_the_first_end():
    ids, lengths = TARGET_VOCAB.encode(["12", "3", ""], end=True)
    eos, pad = TARGET_VOCAB.EOS, TARGET_VOCAB.PAD
    one, two, three = (TARGET_VOCAB.stoi[c] for c in "123")
    assert ids.tolist() == [[one, two, eos], [three, eos, pad], [eos, pad, pad]]
    assert lengths.tolist() == [3, 2, 1]
    after_end = torch.tensor(
        [[one, eos, two, two], [TARGET_VOCAB.BOS, three, pad, two]]
    )
    assert TARGET_VOCAB.decode(after_end) == ["1", "32"]


def test_padding_mask():
    mask = padding_mask(torch.tensor([3, 1, 0]), 4)
    assert mask.tolist() == [
        [True, True, True, False],
        [True, False, False, False],
        [False, False, False, False],
    ]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Seq2Seq(
        len(SOURCE_VOCAB), len(TARGET_VOCAB), hidden_dim=16, attention_dim=12
    )


def test_padding_changes_nothing(model):
    long_ids, long_len = SOURCE_VOCAB.encode(["Monday, November 23, 2026"])
    ids, lengths = SOURCE_VOCAB.encode(["23 nov 2026", "Monday, November 23, 2026"])
    alone, _ = model(
        SOURCE_VOCAB.encode(["23 nov 2026"])[0], torch.tensor([11]), steps=10
    )
    batch, weights = model(ids, lengths, steps=10)
    assert torch.allclose(batch[0], alone[0], atol=1e-5)
    assert torch.allclose(
        batch[1], model(long_ids, long_len, steps=10)[0][0], atol=1e-5
    )
    assert weights.shape == (2, 10, 25)
    assert (weights[0, :, 11:] == 0).all()
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 10))


def test_without_attention_there_are_no_weights(model):
    torch.manual_seed(0)
    baseline = Seq2Seq(
        len(SOURCE_VOCAB), len(TARGET_VOCAB), hidden_dim=16, attention_dim=None
    )
    ids, lengths = SOURCE_VOCAB.encode(["23 nov 2026"])
    logits, weights = baseline(ids, lengths)
    assert logits.shape == (1, 11, len(TARGET_VOCAB)) and weights is None
    assert not any("attention" in name for name, _ in baseline.named_parameters())


def test_teacher_forcing_uses_the_given_previous_characters(model):
    ids, lengths, targets = date_tensors(random_dates(4, seed=2))
    forced, _ = model(ids, lengths, targets)
    greedy, _ = model(ids, lengths, steps=10)
    assert torch.allclose(forced[:, 0], greedy[:, 0])  # both start from <bos>
    wrong = (targets + 1) % len(TARGET_VOCAB)
    assert not torch.allclose(model(ids, lengths, wrong)[0][:, 1], forced[:, 1])


def test_encode_drops_all_padding_columns_and_reads_the_summary(model):
    ids, lengths = SOURCE_VOCAB.encode(["23 nov 2026", "3.2.2027", "1 May 1990"])
    padded = torch.cat([ids, torch.zeros(3, 5, dtype=torch.long)], dim=1)
    annotations, mask, state = model.encode(padded, lengths)
    assert annotations.shape == (3, 11, 32) and mask.shape == (3, 11)
    assert mask.sum(dim=-1).tolist() == lengths.tolist()
    assert (annotations[~mask] == 0).all()
    # encoder_summary reads the encoder's final states off the annotations
    _, summary = model.encoder(ids, lengths)
    assert torch.allclose(encoder_summary(annotations, mask), summary, atol=1e-6)
    assert torch.allclose(state, torch.tanh(model.decoder.init_state(summary)))


def test_loss_ignores_padding_and_is_the_mean_over_real_characters(model):
    ids, lengths, targets = date_tensors(random_dates(3, seed=6))
    padded = torch.cat([targets, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    longer = seq2seq_loss(model, (ids, lengths, padded))
    assert torch.allclose(longer, seq2seq_loss(model, (ids, lengths, targets)))
    logits, _ = model(ids, lengths, targets)
    by_hand = -torch.log_softmax(logits, -1).gather(2, targets[..., None]).mean()
    assert torch.allclose(longer, by_hand)


def test_greedy_decode_stops_pads_and_matches_the_forward_pass():
    # a random model whose rows write <eos> at different steps (see the checker's cases)
    cases = {what: case for what, *case in unit03._decode_cases()}
    model, ids, lengths, _ = cases["rows that end at different steps"]
    eos, pad = CharVocab.EOS, CharVocab.PAD
    with torch.no_grad():
        free_run = model(ids, lengths, steps=8)[0].argmax(dim=-1)  # never stops
    ends = [row.index(eos) for row in free_run.tolist()]
    decoded = greedy_decode(model, ids, lengths, max_steps=8)
    assert decoded.shape == (4, max(ends) + 1) and decoded.dtype == torch.long
    for row, end in enumerate(ends):
        assert torch.equal(decoded[row, : end + 1], free_run[row, : end + 1])
        assert (decoded[row, end + 1 :] == pad).all()
    assert torch.equal(greedy_decode(model, ids, lengths, max_steps=2), free_run[:, :2])


def test_fit_learns_and_records_history(model):
    pairs = random_dates(64, seed=4)
    batches = random_batches(*date_tensors(pairs), batch_size=32, seed=0)
    history = fit(model, seq2seq_loss, batches, num_steps=60, progress=False)
    assert isinstance(history, History) and history.steps == 60 and history.seconds > 0
    assert sum(history.losses[-5:]) / 5 < 0.6 * sum(history.losses[:5]) / 5
    outputs, weights = translate(
        model, [s for s, _ in pairs[:3]], SOURCE_VOCAB, TARGET_VOCAB
    )
    assert len(outputs) == 3 and all(len(o) <= 11 for o in outputs)
    assert weights.shape[:2] == (3, 11)


def test_evaluating_restores_every_submodule_mode():
    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(2, 2))
    model.train()
    model[1].eval()  # a mixed state: the helper must give back exactly this
    with evaluating(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, False]
    model.eval()
    with pytest.raises(RuntimeError), evaluating(model):
        raise RuntimeError("an error inside the block")
    assert not any(m.training for m in model.modules())


def _unit03_call(model: Seq2Seq) -> None:
    ids, lengths = SOURCE_VOCAB.encode(["23 nov 2026", "3.2.2027"])
    greedy_decode(model, ids, lengths, max_steps=3)


def _translate_call(model: Seq2Seq) -> None:
    translate(model, ["23 nov 2026"], SOURCE_VOCAB, TARGET_VOCAB, steps=3)


def _transformer_calls():
    from attention_kit.efficient import generate_cached
    from attention_kit.transformer import (
        bits_per_character,
        generate,
        recall_accuracy,
    )

    prompt = torch.zeros(2, 3, dtype=torch.long)
    return {
        "generate": lambda m: generate(m, prompt, 2, greedy=True),
        "generate_cached": lambda m: generate_cached(m, prompt, 2, greedy=True),
        "recall_accuracy": lambda m: recall_accuracy(m, prompt, prompt[:, 0]),
        "bits_per_character": lambda m: bits_per_character(m, torch.arange(20) % 7),
    }


HELPERS = ["greedy_decode", "translate", *_transformer_calls()]


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("training", [True, False])
def test_every_helper_evaluates_in_eval_mode_and_restores_the_mode(helper, training):
    """The helpers that run a model for a result switch dropout off while they run
    and leave the model in the mode they found it in."""
    from attention_kit.transformer import MiniTransformer, TransformerConfig

    torch.manual_seed(0)
    if helper in ("greedy_decode", "translate"):
        model = Seq2Seq(len(SOURCE_VOCAB), len(TARGET_VOCAB), 8, 8, 8)
        call = _unit03_call if helper == "greedy_decode" else _translate_call
    else:
        model = MiniTransformer(TransformerConfig(7, 6, d_model=8, num_heads=2))
        call = _transformer_calls()[helper]
    model.train(training)
    seen = []
    for module in model.modules():
        module.register_forward_pre_hook(lambda m, args: seen.append(m.training))
    call(model)
    assert seen and not any(seen), f"{helper} ran some module in training mode"
    assert all(m.training == training for m in model.modules())


def test_random_batches_are_seeded():
    data = torch.arange(100)
    first = next(random_batches(data, batch_size=8, seed=3))[0]
    again = next(random_batches(data, batch_size=8, seed=3))[0]
    assert torch.equal(first, again)
