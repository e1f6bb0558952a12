/* Makes the kernel call its usermode helpers, then fails: the program under test is broken. */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
    /* Socket families that are modules, not loaded: the kernel runs modprobe. */
    socket(5 /* AF_APPLETALK */, SOCK_DGRAM, 0);
    socket(9 /* AF_X25 */, SOCK_SEQPACKET, 0);
    /* A key that does not exist: the kernel runs request-key. */
    syscall(SYS_request_key, "user", "fci-forgery", "callout", -2 /* process keyring */);
    /* A binary of no known format: the kernel asks modprobe for binfmt-XXXX. */
    FILE *f = fopen("/tmp/unknown-format", "w");
    if (f) {
        fwrite("\001\002\003\004\005\006\007\010", 1, 8, f);
        fclose(f);
        chmod("/tmp/unknown-format", 0755);
        char *argv[] = {"/tmp/unknown-format", NULL};
        execv(argv[0], argv);
    }
    sleep(5); /* time for a helper to answer before this check's own result */
    fprintf(stderr, "helper-trigger: broken, exiting 1\n");
    return 1;
}
