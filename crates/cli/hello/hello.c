/* The `hello-world` image's only program: prints what just happened and
 * exits 0. Built static, without libc, from raw write/exit syscalls so the
 * image is a few kilobytes and the `wharf` binary can carry it. */

static const char msg[] =
    "\n"
    "Hello from Wharf!\n"
    "This message shows that your installation appears to be working correctly.\n"
    "\n"
    "To print it, wharf did the following:\n"
    " 1. The wharf client asked the wharf daemon to create a container from the\n"
    "    \"hello-world\" image.\n"
    " 2. The image was not in the local store, and no registry could supply it,\n"
    "    so the client loaded the copy of it that ships inside the wharf binary.\n"
    " 3. The daemon unpacked the image into a fresh root filesystem, set up\n"
    "    namespaces and cgroups, and started this program as the container's\n"
    "    first process.\n"
    " 4. The daemon streamed this output back to the client, which printed it\n"
    "    to your terminal, and will now exit with the program's exit code (0).\n"
    "\n"
    "To try something more ambitious, run a shell in a container with:\n"
    " $ wharf run -it busybox sh\n"
    "\n"
    "Every command you know from docker works the same way: try 'wharf --help'.\n"
    "\n";

#if defined(__x86_64__)
static long sys3(long n, long a, long b, long c) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}
#define SYS_WRITE 1
#define SYS_EXIT 60
#elif defined(__aarch64__)
static long sys3(long n, long a, long b, long c) {
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
    return x0;
}
#define SYS_WRITE 64
#define SYS_EXIT 93
#else
#error "hello: unsupported architecture"
#endif

void _start(void) {
    long off = 0, len = sizeof(msg) - 1;
    while (off < len) {
        long n = sys3(SYS_WRITE, 1, (long)(msg + off), len - off);
        if (n <= 0) {
            sys3(SYS_EXIT, 1, 0, 0);
        }
        off += n;
    }
    sys3(SYS_EXIT, 0, 0, 0);
    for (;;) {
    }
}
