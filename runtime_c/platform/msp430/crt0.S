; crt0.S - freeml-tx start-up code for fr5994.ld, small or large (-mlarge) memory model.
; Adapted from the toolchain bundle's example/crt0.S (shared/toolchains/msp430/example).
;
; At every boot (power-on, and after each power failure, in the simulator as on the device):
; set the stack pointer, stop the watchdog, copy .data from FRAM to SRAM, clear .bss, call main.
; FRAM (.persistent, .upper.*) is left alone: that is where intermittent progress lives.
; When main returns 0 the program halts with `jmp $', which ends a simulation with exit
; status 0 ("halt"); any other value branches to address 0, which the simulator reports as a
; fault (exit status 255, "fault").  .data and .bss are in SRAM below 64 KB, so 16-bit
; addresses and moves suffice in both memory models.

#ifdef __MSP430X_LARGE__
#define CALL_  calla
#else
#define CALL_  call
#endif

        .section .crt0, "ax", @progbits
        .global _start
        .type   _start, @function
_start:
        mov     #__stack_top, r1
        mov     #0x5a80, &0x015C        ; WDTCTL = WDTPW | WDTHOLD

        mov     #__data_load, r12       ; .data: FRAM image -> SRAM
        mov     #__data_start, r13
        mov     #__data_end, r14
.Lcopy: cmp     r14, r13
        jhs     .Lzero
        mov     @r12+, 0(r13)
        incd    r13
        jmp     .Lcopy

.Lzero: mov     #__bss_start, r13       ; .bss: clear
        mov     #__bss_end, r14
.Lclr:  cmp     r14, r13
        jhs     .Lmain
        clr     0(r13)
        incd    r13
        jmp     .Lclr

.Lmain: CALL_   #main
        tst     r12
        jnz     __fail
        .global __stop
        .type   __stop, @function
__stop: jmp     __stop                  ; halt: the simulator exits with status 0
        .size   _start, . - _start

        .global __fail
        .type   __fail, @function
__fail: mov     #0, r0                  ; PC = 0: the simulator exits with status 255
        .size   __fail, . - __fail
