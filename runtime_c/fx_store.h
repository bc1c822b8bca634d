/* fx_store.h - every store to non-volatile memory (FRAM activations, progress records) goes
 * through FX_STORE so the host's power-failure injection can count them and fail between any two.
 * On the MSP430 and in continuous-power host builds it is a plain store.
 */
#ifndef FX_STORE_H
#define FX_STORE_H

#if defined(FX_HOST_POWER_FAIL)
/* May not return: simulates a power failure before the next store (platform/host). */
void fx_host_before_store(void);
/* Tells the platform a progress commit completed (re-executed work is measured from here). */
void fx_host_committed(void);
#define FX_STORE(lvalue, value) (fx_host_before_store(), (lvalue) = (value))
#define FX_COMMITTED() fx_host_committed()
#else
#define FX_STORE(lvalue, value) ((lvalue) = (value))
#define FX_COMMITTED() ((void)0)
#endif

#endif /* FX_STORE_H */
