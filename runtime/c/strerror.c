/*
 * plat_strerror for every platform: Linux reports its errno numbers, and
 * semihosting hosts report the same numbers (semihost/platform.c reads them
 * with SYS_ERRNO), so one table serves both. Included by runtime.c.
 */

static const char *plat_strerror(long err) {
    switch (-err) {
    case 1: return "operation not permitted";
    case 2: return "no such file or directory";
    case 5: return "input/output error";
    case 9: return "bad file descriptor";
    case 12: return "out of memory";
    case 13: return "permission denied";
    case 17: return "file exists";
    case 20: return "not a directory";
    case 21: return "is a directory";
    case 22: return "invalid argument";
    case 23: case 24: return "too many open files";
    case 27: return "file too large";
    case 28: return "no space left on device";
    case 29: return "illegal seek";
    case 30: return "read-only file system";
    case 36: return "file name too long";
    case 40: return "too many levels of symbolic links";
    case 122: return "disk quota exceeded";
    default: return 0;
    }
}

