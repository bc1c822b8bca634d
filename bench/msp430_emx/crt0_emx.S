; crt0_emx.S - start-up code for emx_sim.ld (large memory model only): the stack at the top of the
; STACK region (20-bit address, MOVA), watchdog off, .data copied, .bss cleared, CALLA main,
; then halt (jmp $: the simulator exits 0) or fault (PC = 0: exit 255) as runtime_c's crt0.S does.
        .section .crt0, "ax", @progbits
        .global _start
        .type   _start, @function
_start: mova    #__emx_stack_top, r1
        mov     #0x5a80, &0x015C
        mov     #__data_load, r12
        mov     #__data_start, r13
        mov     #__data_end, r14
.Lcopy: cmp     r14, r13
        jhs     .Lzero
        mov     @r12+, 0(r13)
        incd    r13
        jmp     .Lcopy
.Lzero: mov     #__bss_start, r13
        mov     #__bss_end, r14
.Lclr:  cmp     r14, r13
        jhs     .Lmain
        clr     0(r13)
        incd    r13
        jmp     .Lclr
.Lmain: calla   #main
        tst     r12
        jnz     .Lfail
.Lstop: jmp     .Lstop
.Lfail: mov     #0, r0
        .size   _start, . - _start
