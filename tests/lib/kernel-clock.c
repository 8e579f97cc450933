/* The kernel's clock-sync flag, for the boot test (tests/boot.sh): read it, or set the clock
 * "synchronised" / "unsynchronised" the way an NTP daemon does (adjtimex ADJ_STATUS and
 * ADJ_MAXERROR), without stepping the time. Needs root (CAP_SYS_TIME) to set.
 *   kernel-clock get        -> prints "synced" or "unsynced" (and the status word)
 *   kernel-clock synced     -> clears STA_UNSYNC, maxerror 0
 *   kernel-clock unsynced   -> sets STA_UNSYNC
 *   kernel-clock status N   -> restores a saved status word (as printed by get)
 * The flag is the kernel's, shared by every container on the machine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

static int get(struct timex *tx) {
    memset(tx, 0, sizeof *tx);
    int state = adjtimex(tx);
    if (state == -1) { perror("adjtimex"); exit(1); }
    return state;
}

static void set_status(int status, int maxerror) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_STATUS | (maxerror >= 0 ? ADJ_MAXERROR | ADJ_ESTERROR : 0);
    tx.status = status;
    tx.maxerror = maxerror >= 0 ? maxerror : 0;
    tx.esterror = 0;
    if (adjtimex(&tx) == -1) { perror("adjtimex (set)"); exit(1); }
}

int main(int argc, char **argv) {
    struct timex tx;
    if (argc < 2) { fprintf(stderr, "usage: kernel-clock get|synced|unsynced|status N\n"); return 2; }
    int state = get(&tx);
    if (!strcmp(argv[1], "get")) {
        int synced = state != TIME_ERROR && !(tx.status & STA_UNSYNC);
        printf("%s %d\n", synced ? "synced" : "unsynced", tx.status);
    } else if (!strcmp(argv[1], "synced")) {
        set_status(tx.status & ~STA_UNSYNC, 0);
    } else if (!strcmp(argv[1], "unsynced")) {
        set_status(tx.status | STA_UNSYNC, -1);
    } else if (!strcmp(argv[1], "status") && argc == 3) {
        set_status(atoi(argv[2]), -1);
    } else {
        fprintf(stderr, "usage: kernel-clock get|synced|unsynced|status N\n");
        return 2;
    }
    return 0;
}
