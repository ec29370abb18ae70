/*
 * Link-time compatibility for the static musl build of wharf-runtime
 * (scripts/build-static, ADR 0008).
 *
 * Debian's libseccomp.a is compiled against glibc with _FORTIFY_SOURCE, so
 * its PFC exporter calls glibc's fortified __fprintf_chk, which musl does
 * not provide. This forwards it to vfprintf; the fortify level flag only
 * asks for %n checks, and libseccomp's format strings have no %n.
 * No header of either libc is included: FILE is opaque here and va_list
 * comes from the compiler.
 */
#include <stdarg.h>

struct _IO_FILE;
int vfprintf(struct _IO_FILE *stream, const char *format, va_list ap);

int __fprintf_chk(struct _IO_FILE *stream, int flag, const char *format, ...)
{
    va_list ap;
    int n;

    (void)flag;
    va_start(ap, format);
    n = vfprintf(stream, format, ap);
    va_end(ap);
    return n;
}
