/* fx_progress.h - progress records for intermittent execution (DESIGN.md section 8).
 *
 * Progress lives in FRAM as two records {step, unit, seq, check}. A commit overwrites the OLDER
 * record in three phases: (1) seq := 0, which marks the record invalid; (2) step, unit and the
 * checksum of {step, unit, seq'}; (3) seq := seq', one 16-bit store that makes it valid at once.
 * A power failure at any point leaves the other (current) record valid, so the newest valid record
 * is always a consistent point to resume from. Sequence numbers skip 0 and compare modulo 2^16.
 * Zeroed FRAM (a freshly loaded image) holds no valid record: the inference starts at step 0.
 */
#ifndef FX_PROGRESS_H
#define FX_PROGRESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    volatile uint16_t step;
    volatile uint16_t unit;
    volatile uint16_t seq;     /* 0 = invalid */
    volatile uint16_t check;
} fx_record_t;

typedef struct {
    fx_record_t rec[2];
} fx_progress_t;

/* The newest valid record's (step, unit); (0, 0) when there is none. Returns its seq (0: none). */
uint16_t fx_progress_load(const fx_progress_t *p, uint16_t *step, uint16_t *unit);

/* Make (step, unit) the current progress. */
void fx_progress_commit(fx_progress_t *p, uint16_t step, uint16_t unit);

/* Forget all progress: the next run starts a new inference. */
void fx_progress_reset(fx_progress_t *p);

/* Number of FRAM stores one commit performs (for cost models and tests). */
#define FX_PROGRESS_COMMIT_STORES 5u

#ifdef __cplusplus
}
#endif
#endif /* FX_PROGRESS_H */
