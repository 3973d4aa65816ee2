/* bench/floor: a do-nothing DNS responder, the floor of harness W and I.
 *
 * Blocking recvmmsg (MSG_WAITFORONE), flip QR and set AA in place, send
 * the same bytes back with sendmmsg. No parsing, so its cost is almost all
 * kernel: what any UDP server pays per packet on this machine.
 * Usage: floor <port>   (binds 127.0.0.1:<port>)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 32
#define SLOT 1500

int main(int argc, char **argv) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 5399)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int buf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) return 1;
    static char bufs[BATCH][SLOT];
    static struct sockaddr_in6 names[BATCH];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){bufs[i], SLOT};
            msgs[i].msg_hdr = (struct msghdr){.msg_name = &names[i], .msg_namelen = sizeof names[i],
                                              .msg_iov = &iov[i], .msg_iovlen = 1};
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_len >= 12) bufs[i][2] |= 0x84; /* QR + AA */
            iov[i].iov_len = msgs[i].msg_len;
        }
        sendmmsg(fd, msgs, n, 0);
    }
}
