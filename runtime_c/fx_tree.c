/* fx_tree.c - decision trees: a walk per tree (fx_trees) and the sum of the leaves (fx_tree_sum).
 *
 *   fx_trees:    y[t] = the leaf tree t reaches: from roots[t], while the entry is a branch n,
 *                go to children[n][0] when x[feature[n]] <= threshold[n], else children[n][1];
 *                an entry with FX_TREE_LEAF set is a leaf, entry & 0x7FFF the offset of its values.
 *   fx_tree_sum: y[c] = requant(bias[c] + sum over trees t with first[t] <= c < first[t] + width
 *                of values[leaves[t] + c - first[t]], shift).
 *
 * A work unit of fx_trees is one tree (one walk, one store), of fx_tree_sum one output: each reads
 * only what no step of the pair writes, so re-running a unit after a power failure stores the same
 * value. The walk is a compare and a table load per level; the tables stay in FRAM.
 */
#include "fx_kernels.h"
#include "fx_store.h"

void fx_trees(const fx_trees_t *p, const int16_t *x, int16_t *y, uint16_t t0, uint16_t t1)
{
    uint16_t t;
    for (t = t0; t < t1; ++t) {
        uint16_t node = p->roots[t];
        while (!(node & FX_TREE_LEAF)) {
            const uint16_t *kids = p->children + 2u * node;     /* node < 0x8000 */
            node = x[p->feature[node]] <= p->threshold[node] ? kids[0] : kids[1];
        }
        FX_STORE(y[t], (int16_t)(node & (uint16_t)(FX_TREE_LEAF - 1u)));
    }
}

void fx_tree_sum(const fx_tree_sum_t *p, const int16_t *leaves, int16_t *y, uint16_t c0, uint16_t c1)
{
    const uint16_t width = p->width;
    uint16_t c;
    for (c = c0; c < c1; ++c) {
        uint32_t acc = (uint32_t)p->bias[c];    /* wraps modulo 2^32, as the interpreter's sum */
        uint16_t t;
        for (t = 0; t < p->trees; ++t) {
            const uint16_t first = p->first[t];
            if (c >= first && c - first < width) {
                acc += (uint32_t)(int32_t)p->values[(uint16_t)((uint16_t)leaves[t] + (uint16_t)(c - first))];
            }
        }
        FX_STORE(y[c], fx_requant((int32_t)acc, p->shift));
    }
}
