"""The pipeline text: values, round trip, error columns, options typed by the pass's dataclass."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transpiler.errors import PipelineError
from transpiler.pass_infra import Pass
from transpiler.pipeline import PassSpec, build_options, format_pipeline, parse_pipeline


def test_design_example() -> None:
    specs = parse_pipeline("normalize,sparsify{budget=64KiB,max-drop=1.0},attach-gnet{exits=[conv1,conv2]},"
                           "quantize")
    assert specs == [PassSpec("normalize"), PassSpec("sparsify", {"budget": 65536, "max-drop": 1.0}),
                     PassSpec("attach-gnet", {"exits": ["conv1", "conv2"]}), PassSpec("quantize")]


@pytest.mark.parametrize("text, value", [
    ("8KiB", 8192), ("64KB", 65536), ("8kB", 8192), ("1MiB", 1 << 20), ("2MB", 2 << 20), ("100B", 100),
    ("1.5KiB", 1536), ("42", 42), ("-3", -3), ("0.25", 0.25), ("1e-3", 0.001), ("true", True),
    ("false", False), ("conv1", "conv1"), ("model/conv.0", "model/conv.0"), ('"a b,c}"', "a b,c}"),
    ('"say \\"hi\\""', 'say "hi"'), ("[]", []), ("[1,2]", [1, 2]), ("a:b:c", ["a", "b", "c"]),
    ("[ 1 , x ]", [1, "x"]), ('"8KiB"', "8KiB"),
])
def test_values(text: str, value: object) -> None:
    parsed = parse_pipeline(f"p{{k={text}}}")[0].options["k"]
    assert parsed == value and type(parsed) is type(value)


def test_whitespace_snake_keys_and_empty() -> None:
    assert parse_pipeline("") == [] and parse_pipeline("   ") == []
    assert parse_pipeline(" a , b { max_drop = 2 } ") == [PassSpec("a"), PassSpec("b", {"max-drop": 2})]


def test_format_keeps_the_users_spelling_of_sizes() -> None:
    assert format_pipeline(parse_pipeline("s{budget=64KiB, n=3}")) == "s{budget=64KiB,n=3}"


@pytest.mark.parametrize("text, column, words", [
    ("a,,b", 3, "unexpected ','"),
    ("a{b=1", 6, "ends too early"),
    ("a{b=@}", 5, "unexpected character '@'"),
    ("Normalize", 1, "not kebab-case"),
    ("a,b{Max=1}", 5, "not kebab-case"),
    ("a{b=1,b=2}", 7, "given twice"),
    ("a b", 3, "unexpected 'b'"),
    ("a{b=1}}", 7, "unexpected '}'"),
    ("a{b=1.5B}", 5, "whole number of bytes"),
    ('a{b="x\\q"}', 5, "bad escape"),
])
def test_error_columns(text: str, column: int, words: str) -> None:
    with pytest.raises(PipelineError) as info:
        parse_pipeline(text)
    err = info.value
    assert err.location.column == column
    assert words in err.message and f"(column {column})" in err.message
    assert err.details == [text, " " * (column - 1) + "^"]


# --- round trip -----------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4}){0,2}", fullmatch=True)
SCALARS = st.one_of(
    st.integers(-10**12, 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=12),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,8}", fullmatch=True),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4))
SPECS = st.lists(st.builds(PassSpec, NAMES, st.dictionaries(NAMES, VALUES, max_size=4)), max_size=5)


@settings(max_examples=30, deadline=None)
@given(SPECS)
def test_round_trip(specs: list[PassSpec]) -> None:
    text = format_pipeline(specs)
    parsed = parse_pipeline(text)
    assert parsed == specs
    for spec, back in zip(specs, parsed):  # ints stay ints, floats floats, bools bools
        for key, value in spec.options.items():
            assert repr(back.options[key]) == repr(value)
    assert format_pipeline(parsed) == text


# --- options -------------------------------------------------------------------------------------

class Mode(enum.Enum):
    FAST = "fast"
    EXACT = "exact"


@dataclass(frozen=True)
class DemoOptions:
    budget: int = 8192
    max_drop: float = 1.0
    fine_tune: bool = True
    exits: tuple[str, ...] = ()
    label: str = "x"
    method: Literal["svd", "tucker"] = "svd"
    limit: Optional[int] = None
    mode: Mode = Mode.FAST


class Demo(Pass):
    """A pass with every kind of option."""

    name = "demo"
    options_type = DemoOptions


def options(text: str) -> DemoOptions:
    return build_options(Demo, parse_pipeline(text)[0])


def test_options_are_converted_to_field_types() -> None:
    got = options("demo{budget=64KiB,max-drop=2,fine_tune=false,exits=conv1:conv2,label=8KiB,"
                  "method=tucker,limit=none,mode=exact}")
    assert got == DemoOptions(budget=65536, max_drop=2.0, fine_tune=False, exits=("conv1", "conv2"),
                              label="8KiB", method="tucker", limit=None, mode=Mode.EXACT)
    assert options("demo{exits=conv1,limit=3}").exits == ("conv1",)
    assert options("demo") == DemoOptions()


@pytest.mark.parametrize("text, words", [
    ("demo{bugdet=1}", ["no option 'bugdet'", "budget (int, default 8192)"]),
    ("demo{budget=1.5}", ["'budget'", "expects an integer", "got 1.5"]),
    ("demo{fine-tune=yes}", ["expects true or false", "got yes"]),
    ("demo{method=qr}", ["expects one of svd | tucker"]),
    ("demo{label=[a,b]}", ["expects a single str"]),
    ("demo{mode=slow}", ["one of fast | exact"]),
    ("demo{limit=x}", ["expects int | none"]),
])
def test_bad_options_name_pass_key_and_valid_keys(text: str, words: list[str]) -> None:
    with pytest.raises(PipelineError) as info:
        options(text)
    rendered = info.value.render()
    assert "demo" in rendered
    for word in words:
        assert word in rendered
    assert "^" in info.value.details[1]


def test_pass_without_options() -> None:
    class Bare(Pass):
        """No options."""

        name = "bare"

    with pytest.raises(PipelineError, match="has no option 'x'") as info:
        build_options(Bare, parse_pipeline("bare{x=1}")[0])
    assert "takes no options" in (info.value.hint or "")


def test_required_option() -> None:
    @dataclass(frozen=True)
    class Needy:
        size: int

    class NeedsSize(Pass):
        """Needs an option."""

        name = "needs-size"
        options_type = Needy

    with pytest.raises(PipelineError, match="needs option"):
        build_options(NeedsSize, parse_pipeline("needs-size")[0])
    assert build_options(NeedsSize, parse_pipeline("needs-size{size=1KiB}")[0]) == Needy(1024)
