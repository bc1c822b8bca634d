"""Code and read-only tables of the C runtime on the MSP430FR5994, per section (generated; do not edit).

Written by ``python tools/msp430_code_sizes.py --write`` from runtime_c/fx_*.c compiled with
msp430-elf-gcc (freeml-tx msp430 toolchain, Debian gcc-12-source 12.2.0-14+deb12u1) 12.2.0 and msp430.mk's flags, for the small and the large (``-mlarge``) memory model.
``GRAPHS[model]['sections']``: ``'file:section' -> [bytes, 'code' | 'rodata' | 'data']``;
``['edges']``: the sections each one refers to (relocations); ``['entries']``: global function ->
its section. plan-memory adds up what is reachable from the entry points a program's steps call.
"""

SOURCES_SHA256 = '881643756178335f2f66c98d7c0b3f6e9cc01ccfc6f3f99b6f3e130489e87c39'

GRAPHS: dict[str, dict[str, dict[str, object]]] = {
 "large": {
  "edges": {
   "fx_conv.c:.rodata.CSWTCH.63": [
    "fx_conv.c:.text.fx_conv_run_k2",
    "fx_conv.c:.text.fx_conv_run_k3",
    "fx_conv.c:.text.fx_conv_run_k5",
    "fx_conv.c:.text.fx_conv_run_kn"
   ],
   "fx_conv.c:.rodata.CSWTCH.65": [
    "fx_conv.c:.text.fx_conv_run_edge2",
    "fx_conv.c:.text.fx_conv_run_edge3",
    "fx_conv.c:.text.fx_conv_run_edge4"
   ],
   "fx_conv.c:.text.fx_conv": [
    "fx_conv.c:.text.fx_conv_units",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_border_windows": [
    "fx_conv.c:.text.fx_conv_window"
   ],
   "fx_conv.c:.text.fx_conv_col_units": [
    "fx_conv.c:.text.fx_conv_cols",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divHI.o):.text.__umodhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_cols": [
    "fx_conv.c:.text.fx_conv_set_row_run",
    "fx_conv.c:.text.fx_conv_window",
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_edge_row": [
    "fx_conv.c:.text.fx_conv_border_windows",
    "fx_conv.c:.text.fx_conv_set_row_run",
    "fx_requant.c:.text.fx_apply_act",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_interior": [
    "fx_conv.c:.rodata.CSWTCH.65",
    "fx_conv.c:.text.fx_conv_border_windows",
    "fx_conv.c:.text.fx_conv_run_edgen",
    "fx_requant.c:.text.fx_apply_act",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_conv.c:.text.fx_conv_prepare": [
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_run_33": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_55": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edge2": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edge3": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edge4": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edgen": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_k2": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_k3": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_k5": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_kn": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_strided": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_set_row_run": [
    "fx_conv.c:.rodata.CSWTCH.63",
    "fx_conv.c:.text.fx_conv_run_33",
    "fx_conv.c:.text.fx_conv_run_55",
    "fx_conv.c:.text.fx_conv_run_kn",
    "fx_conv.c:.text.fx_conv_run_strided"
   ],
   "fx_conv.c:.text.fx_conv_units": [
    "fx_conv.c:.text.fx_conv_edge_row",
    "fx_conv.c:.text.fx_conv_interior",
    "fx_conv.c:.text.fx_conv_run_strided",
    "fx_conv.c:.text.fx_conv_set_row_run",
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divHI.o):.text.__umodhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_conv.c:.text.fx_conv_window": [
    "fx_conv.c:.rodata.CSWTCH.65",
    "fx_conv.c:.text.fx_conv_run_edgen",
    "fx_requant.c:.text.fx_apply_act",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_eltwise.c:.text.fx_act": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_eltwise.c:.text.fx_add": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "libgcc.a(slli.o):.text.__mspabi_slll"
   ],
   "fx_eltwise.c:.text.fx_lut": [
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(slli.o):.text.__mspabi_slli",
    "libgcc.a(slli.o):.text.__mspabi_slll"
   ],
   "fx_eltwise.c:.text.fx_mul": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn"
   ],
   "fx_eltwise.c:.text.fx_requant_copy": [
    "fx_requant.c:.text.fx_requant"
   ],
   "fx_fc.c:.text.fx_fc": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_norm.c:.text.fx_layernorm": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libgcc.a(slli.o):.text.__mspabi_sllll",
    "libgcc.a(srai.o):.text.__mspabi_sral",
    "libgcc.a(srli.o):.text.__mspabi_srll",
    "libgcc.a(srli.o):.text.__mspabi_srlll",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_pool.c:.text.fx_avgpool": [
    "fx_pool.c:.text.fx_avgpool_run.isra.0",
    "fx_pool.c:.text.fx_avgpool_window",
    "fx_pool.c:.text.fx_pool_geo",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_avgpool_run.isra.0": [
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divSI.o):.text.__divsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_avgpool_window": [
    "libgcc.a(lib2divSI.o):.text.__divsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_maxpool": [
    "fx_pool.c:.text.fx_maxpool_run.isra.0",
    "fx_pool.c:.text.fx_maxpool_window",
    "fx_pool.c:.text.fx_pool_geo",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_maxpool_window": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_pool.c:.text.fx_pool_geo": [
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_progress.c:.text.fx_progress_commit": [
    "fx_progress.c:.text.fx_progress_current"
   ],
   "fx_progress.c:.text.fx_progress_load": [
    "fx_progress.c:.text.fx_progress_current"
   ],
   "fx_requant.c:.rodata.fx_rq_table": [
    "fx_requant.c:.text.fx_rq_0",
    "fx_requant.c:.text.fx_rq_1",
    "fx_requant.c:.text.fx_rq_10",
    "fx_requant.c:.text.fx_rq_11",
    "fx_requant.c:.text.fx_rq_12",
    "fx_requant.c:.text.fx_rq_13",
    "fx_requant.c:.text.fx_rq_14",
    "fx_requant.c:.text.fx_rq_15",
    "fx_requant.c:.text.fx_rq_16",
    "fx_requant.c:.text.fx_rq_17",
    "fx_requant.c:.text.fx_rq_18",
    "fx_requant.c:.text.fx_rq_19",
    "fx_requant.c:.text.fx_rq_2",
    "fx_requant.c:.text.fx_rq_20",
    "fx_requant.c:.text.fx_rq_21",
    "fx_requant.c:.text.fx_rq_22",
    "fx_requant.c:.text.fx_rq_23",
    "fx_requant.c:.text.fx_rq_24",
    "fx_requant.c:.text.fx_rq_25",
    "fx_requant.c:.text.fx_rq_26",
    "fx_requant.c:.text.fx_rq_27",
    "fx_requant.c:.text.fx_rq_28",
    "fx_requant.c:.text.fx_rq_29",
    "fx_requant.c:.text.fx_rq_3",
    "fx_requant.c:.text.fx_rq_30",
    "fx_requant.c:.text.fx_rq_31",
    "fx_requant.c:.text.fx_rq_32",
    "fx_requant.c:.text.fx_rq_33",
    "fx_requant.c:.text.fx_rq_34",
    "fx_requant.c:.text.fx_rq_35",
    "fx_requant.c:.text.fx_rq_36",
    "fx_requant.c:.text.fx_rq_37",
    "fx_requant.c:.text.fx_rq_38",
    "fx_requant.c:.text.fx_rq_39",
    "fx_requant.c:.text.fx_rq_4",
    "fx_requant.c:.text.fx_rq_40",
    "fx_requant.c:.text.fx_rq_41",
    "fx_requant.c:.text.fx_rq_42",
    "fx_requant.c:.text.fx_rq_43",
    "fx_requant.c:.text.fx_rq_44",
    "fx_requant.c:.text.fx_rq_45",
    "fx_requant.c:.text.fx_rq_46",
    "fx_requant.c:.text.fx_rq_5",
    "fx_requant.c:.text.fx_rq_6",
    "fx_requant.c:.text.fx_rq_7",
    "fx_requant.c:.text.fx_rq_8",
    "fx_requant.c:.text.fx_rq_9"
   ],
   "fx_requant.c:.text.fx_apply_act": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhisi2"
   ],
   "fx_requant.c:.text.fx_requant": [
    "fx_requant.c:.rodata.fx_rq_table",
    "fx_requant.c:.text.fx_rq_15"
   ],
   "fx_requant.c:.text.fx_requant_fn": [
    "fx_requant.c:.rodata.fx_rq_table",
    "fx_requant.c:.text.fx_rq_15"
   ],
   "fx_seq.c:.text.fx_embed": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_seq.c:.text.fx_matmul": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_seq.c:.text.fx_softmax": [
    "fx_seq.c:.text.fx_softmax_exp.isra.0",
    "libgcc.a(_udivdi3.o):.text.__udivdi3",
    "libgcc.a(slli.o):.text.__mspabi_sllll",
    "libgcc.a(srli.o):.text.__mspabi_srll",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_seq.c:.text.fx_softmax_exp.isra.0": [
    "fx_requant.c:.text.fx_requant",
    "libgcc.a(slli.o):.text.__mspabi_slll",
    "libgcc.a(srli.o):.text.__mspabi_srll",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_sparse.c:.text.fx_conv_sparse": [
    "fx_sparse.c:.text.fx_sparse_borders",
    "fx_sparse.c:.text.fx_sparse_inside",
    "fx_sparse.c:.text.fx_sparse_setup",
    "fx_sparse.c:.text.fx_sparse_wide",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_fc_sparse": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_requant.c:.text.fx_requant_fn",
    "fx_sparse.c:.text.fx_fc_sparse_asm"
   ],
   "fx_sparse.c:.text.fx_fc_sparse_asm": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.lower.rodata.fx_sp_pow2"
   ],
   "fx_sparse.c:.text.fx_sparse_borders": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_classes",
    "fx_sparse.c:.text.fx_sparse_geo",
    "fx_sparse.c:.text.fx_sparse_rq",
    "fx_sparse.c:.text.fx_sparse_run"
   ],
   "fx_sparse.c:.text.fx_sparse_chunked": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_dot",
    "fx_sparse.c:.text.fx_sparse_geo",
    "fx_sparse.c:.text.fx_sparse_pixel",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_classes": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_geo": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_inside": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_rq",
    "fx_sparse.c:.text.fx_sparse_run",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_sparse.c:.text.fx_sparse_long": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_classes",
    "fx_sparse.c:.text.fx_sparse_geo",
    "fx_sparse.c:.text.fx_sparse_rq",
    "fx_sparse.c:.text.fx_sparse_run",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_pixel": [
    "fx_sparse.c:.text.fx_sparse_dot",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_rq": [
    "fx_sparse.c:.lower.rodata.fx_sp_pow2"
   ],
   "fx_sparse.c:.text.fx_sparse_run": [
    "fx_sparse.c:.text.fx_sparse_slow"
   ],
   "fx_sparse.c:.text.fx_sparse_setup": [
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divHI.o):.text.__umodhi3",
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_slow": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "libgcc.a(slli.o):.text.__mspabi_slll"
   ],
   "fx_sparse.c:.text.fx_sparse_wide": [
    "fx_sparse.c:.text.fx_sparse_chunked",
    "fx_sparse.c:.text.fx_sparse_long",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_tree.c:.text.fx_tree_sum": [
    "fx_requant.c:.text.fx_requant"
   ],
   "libgcc.a(_clzdi2.o):.text.__clzdi2": [
    "libgcc.a(_clz.o):.rodata.__clz_tab",
    "libgcc.a(slli.o):.text.__mspabi_slll",
    "libgcc.a(srli.o):.text.__mspabi_srll"
   ],
   "libgcc.a(_udivdi3.o):.text.__udivdi3": [
    "libgcc.a(_clzdi2.o):.text.__clzdi2",
    "libgcc.a(slli.o):.text.__mspabi_sllll",
    "libgcc.a(srli.o):.text.__mspabi_srlll"
   ],
   "libgcc.a(lib2divHI.o):.text.__udivhi3": [
    "libgcc.a(lib2divHI.o):.text.udivmodhi4"
   ],
   "libgcc.a(lib2divHI.o):.text.__umodhi3": [
    "libgcc.a(lib2divHI.o):.text.udivmodhi4"
   ],
   "libgcc.a(lib2divSI.o):.text.__divsi3": [
    "libgcc.a(lib2divSI.o):.text.udivmodsi4"
   ],
   "libgcc.a(lib2divSI.o):.text.__udivsi3": [
    "libgcc.a(lib2divSI.o):.text.udivmodsi4"
   ]
  },
  "entries": {
   "fx_act": "fx_eltwise.c:.text.fx_act",
   "fx_add": "fx_eltwise.c:.text.fx_add",
   "fx_apply_act": "fx_requant.c:.text.fx_apply_act",
   "fx_argmax": "fx_eltwise.c:.text.fx_argmax",
   "fx_avgpool": "fx_pool.c:.text.fx_avgpool",
   "fx_conv": "fx_conv.c:.text.fx_conv",
   "fx_conv_col_units": "fx_conv.c:.text.fx_conv_col_units",
   "fx_conv_cols": "fx_conv.c:.text.fx_conv_cols",
   "fx_conv_prepare": "fx_conv.c:.text.fx_conv_prepare",
   "fx_conv_sparse": "fx_sparse.c:.text.fx_conv_sparse",
   "fx_conv_units": "fx_conv.c:.text.fx_conv_units",
   "fx_embed": "fx_seq.c:.text.fx_embed",
   "fx_fc": "fx_fc.c:.text.fx_fc",
   "fx_fc_sparse": "fx_sparse.c:.text.fx_fc_sparse",
   "fx_layernorm": "fx_norm.c:.text.fx_layernorm",
   "fx_lut": "fx_eltwise.c:.text.fx_lut",
   "fx_matmul": "fx_seq.c:.text.fx_matmul",
   "fx_maxpool": "fx_pool.c:.text.fx_maxpool",
   "fx_mul": "fx_eltwise.c:.text.fx_mul",
   "fx_progress_commit": "fx_progress.c:.text.fx_progress_commit",
   "fx_progress_load": "fx_progress.c:.text.fx_progress_load",
   "fx_progress_reset": "fx_progress.c:.text.fx_progress_reset",
   "fx_requant": "fx_requant.c:.text.fx_requant",
   "fx_requant_copy": "fx_eltwise.c:.text.fx_requant_copy",
   "fx_requant_fn": "fx_requant.c:.text.fx_requant_fn",
   "fx_softmax": "fx_seq.c:.text.fx_softmax",
   "fx_tree_sum": "fx_tree.c:.text.fx_tree_sum",
   "fx_trees": "fx_tree.c:.text.fx_trees"
  },
  "sections": {
   "fx_conv.c:.rodata.CSWTCH.63": [
    16,
    "rodata"
   ],
   "fx_conv.c:.rodata.CSWTCH.65": [
    12,
    "rodata"
   ],
   "fx_conv.c:.text.fx_conv": [
    136,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_border_windows": [
    230,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_col_units": [
    246,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_cols": [
    1536,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_edge_row": [
    774,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_interior": [
    1096,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_prepare": [
    1216,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_33": [
    290,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_55": [
    422,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edge2": [
    320,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edge3": [
    336,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edge4": [
    320,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edgen": [
    356,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_k2": [
    300,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_k3": [
    316,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_k5": [
    308,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_kn": [
    332,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_strided": [
    364,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_set_row_run": [
    232,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_units": [
    1484,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_window": [
    880,
    "code"
   ],
   "fx_eltwise.c:.text.fx_act": [
    108,
    "code"
   ],
   "fx_eltwise.c:.text.fx_add": [
    220,
    "code"
   ],
   "fx_eltwise.c:.text.fx_argmax": [
    56,
    "code"
   ],
   "fx_eltwise.c:.text.fx_lut": [
    508,
    "code"
   ],
   "fx_eltwise.c:.text.fx_mul": [
    218,
    "code"
   ],
   "fx_eltwise.c:.text.fx_requant_copy": [
    214,
    "code"
   ],
   "fx_fc.c:.text.fx_fc": [
    376,
    "code"
   ],
   "fx_norm.c:.text.fx_layernorm": [
    1426,
    "code"
   ],
   "fx_pool.c:.text.fx_avgpool": [
    1526,
    "code"
   ],
   "fx_pool.c:.text.fx_avgpool_run.isra.0": [
    744,
    "code"
   ],
   "fx_pool.c:.text.fx_avgpool_window": [
    1456,
    "code"
   ],
   "fx_pool.c:.text.fx_maxpool": [
    1034,
    "code"
   ],
   "fx_pool.c:.text.fx_maxpool_run.isra.0": [
    264,
    "code"
   ],
   "fx_pool.c:.text.fx_maxpool_window": [
    502,
    "code"
   ],
   "fx_pool.c:.text.fx_pool_geo": [
    770,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_commit": [
    120,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_current": [
    198,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_load": [
    68,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_reset": [
    10,
    "code"
   ],
   "fx_requant.c:.rodata.fx_rq_table": [
    188,
    "rodata"
   ],
   "fx_requant.c:.text.fx_apply_act": [
    122,
    "code"
   ],
   "fx_requant.c:.text.fx_requant": [
    36,
    "code"
   ],
   "fx_requant.c:.text.fx_requant_fn": [
    32,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_0": [
    44,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_1": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_10": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_11": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_12": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_13": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_14": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_15": [
    42,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_16": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_17": [
    58,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_18": [
    64,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_19": [
    70,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_2": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_20": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_21": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_22": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_23": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_24": [
    78,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_25": [
    74,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_26": [
    70,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_27": [
    66,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_28": [
    62,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_29": [
    58,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_3": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_30": [
    44,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_31": [
    30,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_32": [
    10,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_33": [
    12,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_34": [
    12,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_35": [
    12,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_36": [
    14,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_37": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_38": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_39": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_4": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_40": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_41": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_42": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_43": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_44": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_45": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_46": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_5": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_6": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_7": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_8": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_9": [
    50,
    "code"
   ],
   "fx_seq.c:.text.fx_embed": [
    270,
    "code"
   ],
   "fx_seq.c:.text.fx_matmul": [
    322,
    "code"
   ],
   "fx_seq.c:.text.fx_softmax": [
    674,
    "code"
   ],
   "fx_seq.c:.text.fx_softmax_exp.isra.0": [
    188,
    "code"
   ],
   "fx_sparse.c:.lower.rodata.fx_sp_pow2": [
    34,
    "rodata"
   ],
   "fx_sparse.c:.text.fx_conv_sparse": [
    344,
    "code"
   ],
   "fx_sparse.c:.text.fx_fc_sparse": [
    872,
    "code"
   ],
   "fx_sparse.c:.text.fx_fc_sparse_asm": [
    2306,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_borders": [
    1576,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_chunked": [
    1994,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_classes": [
    1486,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_dot": [
    326,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_geo": [
    186,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_inside": [
    632,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_long": [
    2532,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_pixel": [
    642,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_rq": [
    170,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_run": [
    840,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_setup": [
    1126,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_slow": [
    82,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_wide": [
    200,
    "code"
   ],
   "fx_tree.c:.text.fx_tree_sum": [
    174,
    "code"
   ],
   "fx_tree.c:.text.fx_trees": [
    140,
    "code"
   ],
   "libgcc.a(_clz.o):.rodata.__clz_tab": [
    256,
    "rodata"
   ],
   "libgcc.a(_clzdi2.o):.text.__clzdi2": [
    138,
    "code"
   ],
   "libgcc.a(_udivdi3.o):.text.__udivdi3": [
    1018,
    "code"
   ],
   "libgcc.a(lib2divHI.o):.text.__udivhi3": [
    8,
    "code"
   ],
   "libgcc.a(lib2divHI.o):.text.__umodhi3": [
    8,
    "code"
   ],
   "libgcc.a(lib2divHI.o):.text.udivmodhi4": [
    58,
    "code"
   ],
   "libgcc.a(lib2divSI.o):.text.__divsi3": [
    76,
    "code"
   ],
   "libgcc.a(lib2divSI.o):.text.__udivsi3": [
    18,
    "code"
   ],
   "libgcc.a(lib2divSI.o):.text.udivmodsi4": [
    130,
    "code"
   ],
   "libgcc.a(slli.o):.text.__mspabi_slli": [
    10,
    "code"
   ],
   "libgcc.a(slli.o):.text.__mspabi_slll": [
    12,
    "code"
   ],
   "libgcc.a(slli.o):.text.__mspabi_sllll": [
    30,
    "code"
   ],
   "libgcc.a(srai.o):.text.__mspabi_sral": [
    12,
    "code"
   ],
   "libgcc.a(srli.o):.text.__mspabi_srll": [
    14,
    "code"
   ],
   "libgcc.a(srli.o):.text.__mspabi_srlll": [
    32,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2": [
    22,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhisi2": [
    26,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2": [
    34,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2": [
    26,
    "code"
   ]
  }
 },
 "small": {
  "edges": {
   "fx_conv.c:.rodata.CSWTCH.63": [
    "fx_conv.c:.text.fx_conv_run_k2",
    "fx_conv.c:.text.fx_conv_run_k3",
    "fx_conv.c:.text.fx_conv_run_k5",
    "fx_conv.c:.text.fx_conv_run_kn"
   ],
   "fx_conv.c:.rodata.CSWTCH.65": [
    "fx_conv.c:.text.fx_conv_run_edge2",
    "fx_conv.c:.text.fx_conv_run_edge3",
    "fx_conv.c:.text.fx_conv_run_edge4"
   ],
   "fx_conv.c:.text.fx_conv": [
    "fx_conv.c:.text.fx_conv_units",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_border_windows": [
    "fx_conv.c:.text.fx_conv_window"
   ],
   "fx_conv.c:.text.fx_conv_col_units": [
    "fx_conv.c:.text.fx_conv_cols",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divHI.o):.text.__umodhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_cols": [
    "fx_conv.c:.text.fx_conv_set_row_run",
    "fx_conv.c:.text.fx_conv_window",
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_edge_row": [
    "fx_conv.c:.text.fx_conv_border_windows",
    "fx_conv.c:.text.fx_conv_set_row_run",
    "fx_requant.c:.text.fx_apply_act",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_interior": [
    "fx_conv.c:.rodata.CSWTCH.65",
    "fx_conv.c:.text.fx_conv_border_windows",
    "fx_conv.c:.text.fx_conv_run_edgen",
    "fx_requant.c:.text.fx_apply_act",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_conv.c:.text.fx_conv_prepare": [
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_conv.c:.text.fx_conv_run_33": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_55": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edge2": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edge3": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edge4": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_edgen": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_k2": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_k3": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_k5": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_kn": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_run_strided": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_conv.c:.text.fx_conv_set_row_run": [
    "fx_conv.c:.rodata.CSWTCH.63",
    "fx_conv.c:.text.fx_conv_run_33",
    "fx_conv.c:.text.fx_conv_run_55",
    "fx_conv.c:.text.fx_conv_run_kn",
    "fx_conv.c:.text.fx_conv_run_strided"
   ],
   "fx_conv.c:.text.fx_conv_units": [
    "fx_conv.c:.text.fx_conv_edge_row",
    "fx_conv.c:.text.fx_conv_interior",
    "fx_conv.c:.text.fx_conv_run_strided",
    "fx_conv.c:.text.fx_conv_set_row_run",
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divHI.o):.text.__umodhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_conv.c:.text.fx_conv_window": [
    "fx_conv.c:.rodata.CSWTCH.65",
    "fx_conv.c:.text.fx_conv_run_edgen",
    "fx_requant.c:.text.fx_apply_act",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_eltwise.c:.text.fx_act": [
    "fx_requant.c:.text.fx_apply_act"
   ],
   "fx_eltwise.c:.text.fx_add": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "libgcc.a(slli.o):.text.__mspabi_slll"
   ],
   "fx_eltwise.c:.text.fx_lut": [
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(slli.o):.text.__mspabi_slli",
    "libgcc.a(slli.o):.text.__mspabi_slll"
   ],
   "fx_eltwise.c:.text.fx_mul": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn"
   ],
   "fx_eltwise.c:.text.fx_requant_copy": [
    "fx_requant.c:.text.fx_requant"
   ],
   "fx_fc.c:.text.fx_fc": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_norm.c:.text.fx_layernorm": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libgcc.a(slli.o):.text.__mspabi_sllll",
    "libgcc.a(srai.o):.text.__mspabi_sral",
    "libgcc.a(srli.o):.text.__mspabi_srll",
    "libgcc.a(srli.o):.text.__mspabi_srlll",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_pool.c:.text.fx_avgpool": [
    "fx_pool.c:.text.fx_avgpool_run.isra.0",
    "fx_pool.c:.text.fx_avgpool_window",
    "fx_pool.c:.text.fx_pool_geo",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_avgpool_run.isra.0": [
    "fx_requant.c:.text.fx_requant_fn",
    "libgcc.a(lib2divSI.o):.text.__divsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_avgpool_window": [
    "libgcc.a(lib2divSI.o):.text.__divsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_maxpool": [
    "fx_pool.c:.text.fx_maxpool_run.isra.0",
    "fx_pool.c:.text.fx_maxpool_window",
    "fx_pool.c:.text.fx_pool_geo",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_pool.c:.text.fx_maxpool_window": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_pool.c:.text.fx_pool_geo": [
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_progress.c:.text.fx_progress_commit": [
    "fx_progress.c:.text.fx_progress_current"
   ],
   "fx_progress.c:.text.fx_progress_load": [
    "fx_progress.c:.text.fx_progress_current"
   ],
   "fx_requant.c:.rodata.fx_rq_table": [
    "fx_requant.c:.text.fx_rq_0",
    "fx_requant.c:.text.fx_rq_1",
    "fx_requant.c:.text.fx_rq_10",
    "fx_requant.c:.text.fx_rq_11",
    "fx_requant.c:.text.fx_rq_12",
    "fx_requant.c:.text.fx_rq_13",
    "fx_requant.c:.text.fx_rq_14",
    "fx_requant.c:.text.fx_rq_15",
    "fx_requant.c:.text.fx_rq_16",
    "fx_requant.c:.text.fx_rq_17",
    "fx_requant.c:.text.fx_rq_18",
    "fx_requant.c:.text.fx_rq_19",
    "fx_requant.c:.text.fx_rq_2",
    "fx_requant.c:.text.fx_rq_20",
    "fx_requant.c:.text.fx_rq_21",
    "fx_requant.c:.text.fx_rq_22",
    "fx_requant.c:.text.fx_rq_23",
    "fx_requant.c:.text.fx_rq_24",
    "fx_requant.c:.text.fx_rq_25",
    "fx_requant.c:.text.fx_rq_26",
    "fx_requant.c:.text.fx_rq_27",
    "fx_requant.c:.text.fx_rq_28",
    "fx_requant.c:.text.fx_rq_29",
    "fx_requant.c:.text.fx_rq_3",
    "fx_requant.c:.text.fx_rq_30",
    "fx_requant.c:.text.fx_rq_31",
    "fx_requant.c:.text.fx_rq_32",
    "fx_requant.c:.text.fx_rq_33",
    "fx_requant.c:.text.fx_rq_34",
    "fx_requant.c:.text.fx_rq_35",
    "fx_requant.c:.text.fx_rq_36",
    "fx_requant.c:.text.fx_rq_37",
    "fx_requant.c:.text.fx_rq_38",
    "fx_requant.c:.text.fx_rq_39",
    "fx_requant.c:.text.fx_rq_4",
    "fx_requant.c:.text.fx_rq_40",
    "fx_requant.c:.text.fx_rq_41",
    "fx_requant.c:.text.fx_rq_42",
    "fx_requant.c:.text.fx_rq_43",
    "fx_requant.c:.text.fx_rq_44",
    "fx_requant.c:.text.fx_rq_45",
    "fx_requant.c:.text.fx_rq_46",
    "fx_requant.c:.text.fx_rq_5",
    "fx_requant.c:.text.fx_rq_6",
    "fx_requant.c:.text.fx_rq_7",
    "fx_requant.c:.text.fx_rq_8",
    "fx_requant.c:.text.fx_rq_9"
   ],
   "fx_requant.c:.text.fx_apply_act": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhisi2"
   ],
   "fx_requant.c:.text.fx_requant": [
    "fx_requant.c:.rodata.fx_rq_table",
    "fx_requant.c:.text.fx_rq_15"
   ],
   "fx_requant.c:.text.fx_requant_fn": [
    "fx_requant.c:.rodata.fx_rq_table",
    "fx_requant.c:.text.fx_rq_15"
   ],
   "fx_seq.c:.text.fx_embed": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_seq.c:.text.fx_matmul": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_seq.c:.text.fx_softmax": [
    "fx_seq.c:.text.fx_softmax_exp",
    "libgcc.a(_udivdi3.o):.text.__udivdi3",
    "libgcc.a(slli.o):.text.__mspabi_sllll",
    "libgcc.a(srli.o):.text.__mspabi_srll",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_seq.c:.text.fx_softmax_exp": [
    "fx_requant.c:.text.fx_requant",
    "libgcc.a(slli.o):.text.__mspabi_slll",
    "libgcc.a(srli.o):.text.__mspabi_srll",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2"
   ],
   "fx_sparse.c:.text.fx_conv_sparse": [
    "fx_sparse.c:.text.fx_sparse_borders",
    "fx_sparse.c:.text.fx_sparse_inside",
    "fx_sparse.c:.text.fx_sparse_setup",
    "fx_sparse.c:.text.fx_sparse_wide",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_fc_sparse": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant_fn",
    "fx_sparse.c:.text.fx_fc_sparse_asm"
   ],
   "fx_sparse.c:.text.fx_fc_sparse_asm": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.rodata.fx_sp_pow2"
   ],
   "fx_sparse.c:.text.fx_sparse_borders": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_classes",
    "fx_sparse.c:.text.fx_sparse_geo",
    "fx_sparse.c:.text.fx_sparse_rq",
    "fx_sparse.c:.text.fx_sparse_run"
   ],
   "fx_sparse.c:.text.fx_sparse_chunked": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_dot",
    "fx_sparse.c:.text.fx_sparse_geo",
    "fx_sparse.c:.text.fx_sparse_pixel",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_classes": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_geo": [
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_inside": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_rq",
    "fx_sparse.c:.text.fx_sparse_run",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2"
   ],
   "fx_sparse.c:.text.fx_sparse_long": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "fx_sparse.c:.text.fx_sparse_classes",
    "fx_sparse.c:.text.fx_sparse_geo",
    "fx_sparse.c:.text.fx_sparse_rq",
    "fx_sparse.c:.text.fx_sparse_run",
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_pixel": [
    "fx_sparse.c:.text.fx_sparse_dot",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_rq": [
    "fx_sparse.c:.rodata.fx_sp_pow2"
   ],
   "fx_sparse.c:.text.fx_sparse_run": [
    "fx_sparse.c:.text.fx_sparse_slow"
   ],
   "fx_sparse.c:.text.fx_sparse_setup": [
    "libgcc.a(lib2divHI.o):.text.__udivhi3",
    "libgcc.a(lib2divHI.o):.text.__umodhi3",
    "libgcc.a(lib2divSI.o):.text.__udivsi3",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_sparse.c:.text.fx_sparse_slow": [
    "fx_requant.c:.text.fx_apply_act",
    "fx_requant.c:.text.fx_requant",
    "libgcc.a(slli.o):.text.__mspabi_slll"
   ],
   "fx_sparse.c:.text.fx_sparse_wide": [
    "fx_sparse.c:.text.fx_sparse_chunked",
    "fx_sparse.c:.text.fx_sparse_long",
    "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2"
   ],
   "fx_tree.c:.text.fx_tree_sum": [
    "fx_requant.c:.text.fx_requant"
   ],
   "libgcc.a(_clzdi2.o):.text.__clzdi2": [
    "libgcc.a(_clz.o):.rodata.__clz_tab",
    "libgcc.a(slli.o):.text.__mspabi_slll",
    "libgcc.a(srli.o):.text.__mspabi_srll"
   ],
   "libgcc.a(_udivdi3.o):.text.__udivdi3": [
    "libgcc.a(_clzdi2.o):.text.__clzdi2",
    "libgcc.a(slli.o):.text.__mspabi_sllll",
    "libgcc.a(srli.o):.text.__mspabi_srlll"
   ],
   "libgcc.a(lib2divHI.o):.text.__udivhi3": [
    "libgcc.a(lib2divHI.o):.text.udivmodhi4"
   ],
   "libgcc.a(lib2divHI.o):.text.__umodhi3": [
    "libgcc.a(lib2divHI.o):.text.udivmodhi4"
   ],
   "libgcc.a(lib2divSI.o):.text.__divsi3": [
    "libgcc.a(lib2divSI.o):.text.udivmodsi4"
   ],
   "libgcc.a(lib2divSI.o):.text.__udivsi3": [
    "libgcc.a(lib2divSI.o):.text.udivmodsi4"
   ]
  },
  "entries": {
   "fx_act": "fx_eltwise.c:.text.fx_act",
   "fx_add": "fx_eltwise.c:.text.fx_add",
   "fx_apply_act": "fx_requant.c:.text.fx_apply_act",
   "fx_argmax": "fx_eltwise.c:.text.fx_argmax",
   "fx_avgpool": "fx_pool.c:.text.fx_avgpool",
   "fx_conv": "fx_conv.c:.text.fx_conv",
   "fx_conv_col_units": "fx_conv.c:.text.fx_conv_col_units",
   "fx_conv_cols": "fx_conv.c:.text.fx_conv_cols",
   "fx_conv_prepare": "fx_conv.c:.text.fx_conv_prepare",
   "fx_conv_sparse": "fx_sparse.c:.text.fx_conv_sparse",
   "fx_conv_units": "fx_conv.c:.text.fx_conv_units",
   "fx_embed": "fx_seq.c:.text.fx_embed",
   "fx_fc": "fx_fc.c:.text.fx_fc",
   "fx_fc_sparse": "fx_sparse.c:.text.fx_fc_sparse",
   "fx_layernorm": "fx_norm.c:.text.fx_layernorm",
   "fx_lut": "fx_eltwise.c:.text.fx_lut",
   "fx_matmul": "fx_seq.c:.text.fx_matmul",
   "fx_maxpool": "fx_pool.c:.text.fx_maxpool",
   "fx_mul": "fx_eltwise.c:.text.fx_mul",
   "fx_progress_commit": "fx_progress.c:.text.fx_progress_commit",
   "fx_progress_load": "fx_progress.c:.text.fx_progress_load",
   "fx_progress_reset": "fx_progress.c:.text.fx_progress_reset",
   "fx_requant": "fx_requant.c:.text.fx_requant",
   "fx_requant_copy": "fx_eltwise.c:.text.fx_requant_copy",
   "fx_requant_fn": "fx_requant.c:.text.fx_requant_fn",
   "fx_softmax": "fx_seq.c:.text.fx_softmax",
   "fx_tree_sum": "fx_tree.c:.text.fx_tree_sum",
   "fx_trees": "fx_tree.c:.text.fx_trees"
  },
  "sections": {
   "fx_conv.c:.rodata.CSWTCH.63": [
    8,
    "rodata"
   ],
   "fx_conv.c:.rodata.CSWTCH.65": [
    6,
    "rodata"
   ],
   "fx_conv.c:.text.fx_conv": [
    130,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_border_windows": [
    228,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_col_units": [
    246,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_cols": [
    1236,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_edge_row": [
    630,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_interior": [
    936,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_prepare": [
    1016,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_33": [
    282,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_55": [
    414,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edge2": [
    302,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edge3": [
    318,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edge4": [
    300,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_edgen": [
    312,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_k2": [
    280,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_k3": [
    296,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_k5": [
    286,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_kn": [
    290,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_run_strided": [
    348,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_set_row_run": [
    202,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_units": [
    1016,
    "code"
   ],
   "fx_conv.c:.text.fx_conv_window": [
    744,
    "code"
   ],
   "fx_eltwise.c:.text.fx_act": [
    94,
    "code"
   ],
   "fx_eltwise.c:.text.fx_add": [
    212,
    "code"
   ],
   "fx_eltwise.c:.text.fx_argmax": [
    48,
    "code"
   ],
   "fx_eltwise.c:.text.fx_lut": [
    488,
    "code"
   ],
   "fx_eltwise.c:.text.fx_mul": [
    196,
    "code"
   ],
   "fx_eltwise.c:.text.fx_requant_copy": [
    154,
    "code"
   ],
   "fx_fc.c:.text.fx_fc": [
    308,
    "code"
   ],
   "fx_norm.c:.text.fx_layernorm": [
    1364,
    "code"
   ],
   "fx_pool.c:.text.fx_avgpool": [
    1362,
    "code"
   ],
   "fx_pool.c:.text.fx_avgpool_run.isra.0": [
    652,
    "code"
   ],
   "fx_pool.c:.text.fx_avgpool_window": [
    1380,
    "code"
   ],
   "fx_pool.c:.text.fx_maxpool": [
    898,
    "code"
   ],
   "fx_pool.c:.text.fx_maxpool_run.isra.0": [
    200,
    "code"
   ],
   "fx_pool.c:.text.fx_maxpool_window": [
    558,
    "code"
   ],
   "fx_pool.c:.text.fx_pool_geo": [
    692,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_commit": [
    108,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_current": [
    198,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_load": [
    52,
    "code"
   ],
   "fx_progress.c:.text.fx_progress_reset": [
    10,
    "code"
   ],
   "fx_requant.c:.rodata.fx_rq_table": [
    94,
    "rodata"
   ],
   "fx_requant.c:.text.fx_apply_act": [
    120,
    "code"
   ],
   "fx_requant.c:.text.fx_requant": [
    32,
    "code"
   ],
   "fx_requant.c:.text.fx_requant_fn": [
    28,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_0": [
    44,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_1": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_10": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_11": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_12": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_13": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_14": [
    48,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_15": [
    42,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_16": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_17": [
    58,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_18": [
    64,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_19": [
    70,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_2": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_20": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_21": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_22": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_23": [
    54,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_24": [
    78,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_25": [
    74,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_26": [
    70,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_27": [
    66,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_28": [
    62,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_29": [
    58,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_3": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_30": [
    44,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_31": [
    30,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_32": [
    10,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_33": [
    12,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_34": [
    12,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_35": [
    12,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_36": [
    14,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_37": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_38": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_39": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_4": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_40": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_41": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_42": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_43": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_44": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_45": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_46": [
    16,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_5": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_6": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_7": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_8": [
    50,
    "code"
   ],
   "fx_requant.c:.text.fx_rq_9": [
    50,
    "code"
   ],
   "fx_seq.c:.text.fx_embed": [
    146,
    "code"
   ],
   "fx_seq.c:.text.fx_matmul": [
    260,
    "code"
   ],
   "fx_seq.c:.text.fx_softmax": [
    540,
    "code"
   ],
   "fx_seq.c:.text.fx_softmax_exp": [
    176,
    "code"
   ],
   "fx_sparse.c:.rodata.fx_sp_pow2": [
    34,
    "rodata"
   ],
   "fx_sparse.c:.text.fx_conv_sparse": [
    330,
    "code"
   ],
   "fx_sparse.c:.text.fx_fc_sparse": [
    608,
    "code"
   ],
   "fx_sparse.c:.text.fx_fc_sparse_asm": [
    2274,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_borders": [
    1462,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_chunked": [
    1860,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_classes": [
    1330,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_dot": [
    310,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_geo": [
    178,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_inside": [
    600,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_long": [
    2372,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_pixel": [
    578,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_rq": [
    162,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_run": [
    830,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_setup": [
    1024,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_slow": [
    82,
    "code"
   ],
   "fx_sparse.c:.text.fx_sparse_wide": [
    180,
    "code"
   ],
   "fx_tree.c:.text.fx_tree_sum": [
    124,
    "code"
   ],
   "fx_tree.c:.text.fx_trees": [
    104,
    "code"
   ],
   "libgcc.a(_clz.o):.rodata.__clz_tab": [
    256,
    "rodata"
   ],
   "libgcc.a(_clzdi2.o):.text.__clzdi2": [
    114,
    "code"
   ],
   "libgcc.a(_udivdi3.o):.text.__udivdi3": [
    1012,
    "code"
   ],
   "libgcc.a(lib2divHI.o):.text.__udivhi3": [
    8,
    "code"
   ],
   "libgcc.a(lib2divHI.o):.text.__umodhi3": [
    8,
    "code"
   ],
   "libgcc.a(lib2divHI.o):.text.udivmodhi4": [
    54,
    "code"
   ],
   "libgcc.a(lib2divSI.o):.text.__divsi3": [
    72,
    "code"
   ],
   "libgcc.a(lib2divSI.o):.text.__udivsi3": [
    14,
    "code"
   ],
   "libgcc.a(lib2divSI.o):.text.udivmodsi4": [
    124,
    "code"
   ],
   "libgcc.a(slli.o):.text.__mspabi_slli": [
    10,
    "code"
   ],
   "libgcc.a(slli.o):.text.__mspabi_slll": [
    12,
    "code"
   ],
   "libgcc.a(slli.o):.text.__mspabi_sllll": [
    30,
    "code"
   ],
   "libgcc.a(srai.o):.text.__mspabi_sral": [
    12,
    "code"
   ],
   "libgcc.a(srli.o):.text.__mspabi_srll": [
    14,
    "code"
   ],
   "libgcc.a(srli.o):.text.__mspabi_srlll": [
    32,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhi2": [
    20,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulhisi2": [
    24,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__mulsi2": [
    32,
    "code"
   ],
   "libmul_f5.a(lib2hw_mul_f5.o):.text.__umulhisi2": [
    24,
    "code"
   ]
  }
 }
}
