"""The compile command's --gnet / --gnet-pool flags and where attach-gnet goes in the pipeline."""

from __future__ import annotations

import argparse

import pytest

from transpiler.cli.compile_cmd import default_pipeline
from transpiler.cli.gnet_flags import parse_gnet_options, with_gnet
from transpiler.errors import InputError


def args(gnet: str | None = None, pool: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(gnet=gnet, gnet_pool=pool, stack=None, persistent=False, sram_only=False)


def test_options_text() -> None:
    assert parse_gnet_options("") == {}
    assert parse_gnet_options("exits=conv1,conv2,fc1") == {"exits": ["conv1", "conv2", "fc1"]}
    assert parse_gnet_options("exits=conv1,conv2,epochs=20,pool_op=avg") == {
        "exits": ["conv1", "conv2"], "epochs": "20", "pool-op": "avg"}
    for bad in ("conv1,conv2", "exits=", "epochs=3,epochs=4"):
        with pytest.raises(InputError):
            parse_gnet_options(bad)


def test_pipeline_position() -> None:
    assert default_pipeline(args()) == "normalize,quantize,lower,plan-memory,emit-c"
    assert default_pipeline(args("")) == "normalize,attach-gnet,quantize,lower,plan-memory,emit-c"
    assert default_pipeline(args("exits=conv1,conv2,fc1", "2x2")) == (
        'normalize,attach-gnet{exits=[conv1,conv2,fc1],pool=["2x2"]},quantize,lower,plan-memory,emit-c')
    assert default_pipeline(args("epochs=20,lr=0.01", "2x2,1x1")) == (
        'normalize,attach-gnet{epochs=20,lr=0.01,pool=["2x2","1x1"]},quantize,lower,plan-memory,emit-c')
    # after sparsify / separate when those run, before quantize
    assert with_gnet("normalize,separate,sparsify{budget=64KiB},quantize,lower", args("")) == (
        "normalize,separate,sparsify{budget=64KiB},attach-gnet,quantize,lower")
    with pytest.raises(InputError, match="--gnet-pool needs --gnet"):
        default_pipeline(args(None, "2x2"))
    # node names that are not bare words are quoted, so any name reaches the pass
    assert default_pipeline(args("exits=/conv1/Conv,a{b")).startswith(
        'normalize,attach-gnet{exits=["/conv1/Conv","a{b"]},quantize')
