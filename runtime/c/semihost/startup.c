/*
 * Cortex-M start-up: the vector table and the reset handler.
 *
 * The generated linker script (runtime/src/firmware.rs) puts `.vectors` first
 * in flash and defines the symbols used here: __stack_top (initial SP, the top
 * of RAM), __data_load/__data_start/__data_end (.data's image in flash and
 * its place in RAM) and __bss_start/__bss_end.
 *
 * The reset handler enables the FPU before anything can execute a
 * floating-point instruction (the C compiler may use FP registers even for
 * copies), then copies .data, zeroes .bss and calls smelt__main_c. Every
 * other exception prints its name through semihosting and exits with status
 * 70, so a faulting firmware ends instead of hanging the emulator.
 */

extern char __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern char __stack_top[];

void smelt__reset(void);
__attribute__((noreturn)) void smelt__main_c(void);

__asm__(".section .text.smelt__reset,\"ax\",%progbits\n"
        ".syntax unified\n"
        ".thumb\n"
        ".globl smelt__reset\n"
        ".type smelt__reset,%function\n"
        ".thumb_func\n"
        "smelt__reset:\n"
        "    ldr r0, =0xE000ED88\n" /* CPACR: full access to CP10 and CP11 */
        "    ldr r1, [r0]\n"
        "    orr r1, r1, #(0xF << 20)\n"
        "    str r1, [r0]\n"
        "    dsb\n"
        "    isb\n"
        "    b smelt__start_c\n"
        ".ltorg\n"
        ".size smelt__reset, .-smelt__reset\n");

/* Word-by-word copies: memcpy and memset may not be called before .data is
   in place (they are ordinary code, but keep the start-up self-contained). */
__attribute__((used, noreturn, visibility("hidden"))) void smelt__start_c(void) {
    volatile uint32_t *d = (volatile uint32_t *)__data_start;
    const uint32_t *s = (const uint32_t *)__data_load;
    while ((char *)d < __data_end) *d++ = *s++;
    for (volatile uint32_t *b = (volatile uint32_t *)__bss_start; (char *)b < __bss_end;) *b++ = 0;
    smelt__main_c();
}

static void fault(const char *what) {
    semihost(SYS_WRITE0, what);
    plat_exit(70);
}

static void on_nmi(void) { fault("firmware: error: NMI\n"); }
static void on_hard_fault(void) { fault("firmware: error: hard fault (a bad memory access or instruction)\n"); }
static void on_mem_manage(void) { fault("firmware: error: memory management fault\n"); }
static void on_bus_fault(void) { fault("firmware: error: bus fault (an access outside memory)\n"); }
static void on_usage_fault(void) { fault("firmware: error: usage fault (undefined instruction, unaligned access or division by zero)\n"); }
static void on_other(void) { fault("firmware: error: unexpected exception\n"); }

/* Initial SP, then the 15 system exceptions; no device interrupts are used. */
__attribute__((used, section(".vectors"))) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top,
    smelt__reset,
    on_nmi,
    on_hard_fault,
    on_mem_manage,
    on_bus_fault,
    on_usage_fault,
    0,
    0,
    0,
    0,
    on_other, /* SVCall */
    on_other, /* DebugMonitor */
    0,
    on_other, /* PendSV */
    on_other, /* SysTick */
};
