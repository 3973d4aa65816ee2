/* bench/loadgen: replays prebuilt DNS queries, each with its own ECS option.
 *
 * dnsperf sends one EDNS option for a whole run, so it cannot model traffic
 * behind public resolvers, where almost every query carries another client
 * subnet. This tool has two modes:
 *
 *   loadgen gen  --seed S --count N --kind geo|flood|static [--v6 0.1] [--hosts H] > q.bin
 *       writes N queries drawn from the seed: for `geo`, www.cdn.example A
 *       with an ECS /24 (or, with probability --v6, AAAA with an ECS /48)
 *       from the global unicast space (with --hosts H, a random one of
 *       h0.cdn.example .. h<H-1>.cdn.example instead of www, so every query
 *       asks for a random host from its own subnet; with --name N, N); for
 *       `flood`, a fresh random label
 *       under cdn.example (NXDOMAIN) with an ECS subnet; for `static`,
 *       static.cdn.example A with EDNS and no ECS. The same seed gives the
 *       same file, byte for byte, so a run can be repeated exactly.
 *   loadgen run  --file q.bin --port P [--rate Q] [--seconds T] [--limit N]
 *       sends the queries in file order (wrapping) at Q per second with
 *       sendmmsg, reads answers with recvmmsg, and prints one line:
 *       sent=.. answered=.. lost=.. noerror=.. nxdomain=.. servfail=..
 *       other=.. p50_ms=.. p99_ms=.. p99_sent_ms=.. (p99 over the sent
 *       queries, a lost one counting as later than every answer, or "lost"
 *       when over 1% were lost; lost = sent and never answered
 *       within 1 s after the last send; `--limit N` sends N queries and
 *       stops, for callgrind's fixed-count harness).
 *
 * File format: for each query, a 2-byte big-endian length and the message.
 * The message ID is overwritten at send time with a sequence number, which
 * is how answers are matched to their send time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 1500

static uint64_t rng_state;
/* splitmix64: tiny, seedable, good enough to draw subnets. */
static uint64_t rnd(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static const char *arg(int argc, char **argv, const char *name, const char *def) {
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return def;
}

/* Appends a presentation name as wire labels. */
static size_t put_name(uint8_t *p, const char *name) {
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (uint8_t)len;
        memcpy(p + n, name, len);
        n += len;
        name += len + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

/* A random public IPv4 /24: skips 0/8, 10/8, 127/8, 169.254/16,
 * 172.16/12, 192.168/16, 100.64/10 and 224/3, so every subnet is one a
 * GeoIP database may place. */
static uint32_t public_v4(void) {
    for (;;) {
        uint32_t a = (uint32_t)rnd() & 0xffffff00u;
        uint8_t o1 = a >> 24, o2 = (a >> 16) & 0xff;
        if (o1 == 0 || o1 == 10 || o1 == 127 || o1 >= 224) continue;
        if (o1 == 169 && o2 == 254) continue;
        if (o1 == 172 && (o2 & 0xf0) == 16) continue;
        if (o1 == 192 && o2 == 168) continue;
        if (o1 == 100 && (o2 & 0xc0) == 64) continue;
        return a;
    }
}

static int gen(int argc, char **argv) {
    rng_state = strtoull(arg(argc, argv, "--seed", "1"), 0, 10);
    long count = atol(arg(argc, argv, "--count", "200000"));
    const char *kind = arg(argc, argv, "--kind", "geo");
    double v6 = atof(arg(argc, argv, "--v6", "0.1"));
    long hosts = atol(arg(argc, argv, "--hosts", "0"));
    const char *fixed = arg(argc, argv, "--name", 0);
    int ecs = strcmp(kind, "static") != 0;
    uint8_t q[512];
    for (long i = 0; i < count; i++) {
        size_t n = 0;
        memset(q, 0, 12);
        q[2] = 0x01; /* RD, as resolvers send */
        q[5] = 1;    /* QDCOUNT */
        q[11] = 1;   /* ARCOUNT: OPT */
        n = 12;
        int is_v6 = ecs && (rnd() % 1000000) < (uint64_t)(v6 * 1000000);
        char name[80];
        if (!strcmp(kind, "flood"))
            snprintf(name, sizeof name, "%016llx.cdn.example", (unsigned long long)rnd());
        else if (!strcmp(kind, "static"))
            snprintf(name, sizeof name, "static.cdn.example");
        else if (fixed)
            snprintf(name, sizeof name, "%s", fixed);
        else if (hosts > 0)
            snprintf(name, sizeof name, "h%llu.cdn.example", (unsigned long long)(rnd() % (uint64_t)hosts));
        else
            snprintf(name, sizeof name, "www.cdn.example");
        n += put_name(q + n, name);
        uint16_t qtype = is_v6 && strcmp(kind, "flood") ? 28 : 1;
        q[n++] = qtype >> 8, q[n++] = qtype & 0xff;
        q[n++] = 0, q[n++] = 1; /* IN */
        /* OPT: root, type 41, udp 1232, ext rcode/version/flags 0 */
        q[n++] = 0;
        q[n++] = 0, q[n++] = 41;
        q[n++] = 1232 >> 8, q[n++] = 1232 & 0xff;
        q[n++] = 0, q[n++] = 0, q[n++] = 0, q[n++] = 0;
        if (!ecs) {
            q[n++] = 0, q[n++] = 0;
        } else if (is_v6) {
            /* ECS /48 inside 2000::/3 */
            uint8_t a[6];
            uint64_t r = rnd();
            for (int k = 0; k < 6; k++) a[k] = (uint8_t)(r >> (8 * k));
            a[0] = 0x20 | (a[0] & 0x1f);
            q[n++] = 0, q[n++] = 4 + 4 + 6;
            q[n++] = 0, q[n++] = 8, q[n++] = 0, q[n++] = 4 + 6;
            q[n++] = 0, q[n++] = 2, q[n++] = 48, q[n++] = 0;
            memcpy(q + n, a, 6);
            n += 6;
        } else {
            uint32_t a = public_v4();
            q[n++] = 0, q[n++] = 4 + 4 + 3;
            q[n++] = 0, q[n++] = 8, q[n++] = 0, q[n++] = 4 + 3;
            q[n++] = 0, q[n++] = 1, q[n++] = 24, q[n++] = 0;
            q[n++] = a >> 24, q[n++] = (a >> 16) & 0xff, q[n++] = (a >> 8) & 0xff;
        }
        uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        fwrite(len, 1, 2, stdout);
        fwrite(q, 1, n, stdout);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run(int argc, char **argv) {
    const char *file = arg(argc, argv, "--file", "q.bin");
    int port = atoi(arg(argc, argv, "--port", "5300"));
    double rate = atof(arg(argc, argv, "--rate", "100000"));
    double seconds = atof(arg(argc, argv, "--seconds", "8"));
    long limit = atol(arg(argc, argv, "--limit", "0"));

    FILE *f = fopen(file, "rb");
    if (!f) { perror(file); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(size);
    if (fread(data, 1, size, f) != (size_t)size) { perror("read"); return 2; }
    fclose(f);
    long nq = 0;
    for (long off = 0; off + 2 <= size; nq++) off += 2 + (data[off] << 8 | data[off + 1]);
    uint32_t *offs = malloc(nq * sizeof *offs);
    for (long off = 0, i = 0; i < nq; i++) { offs[i] = off; off += 2 + (data[off] << 8 | data[off + 1]); }
    if (!nq) { fprintf(stderr, "%s: no queries\n", file); return 2; }

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int buf = 32 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof to)) { perror("connect"); return 2; }

    /* Send times by ID: 65536 slots; an ID is reused after 65536 sends, so
     * at 100k qps an answer must come back within ~0.6 s to be matched
     * (slower ones count as lost, which is what a resolver would do). */
    static double sent_at[65536];
    static uint8_t pending[65536];
    long max_lat = limit ? limit : (long)(rate * seconds) + BATCH;
    double *lat = malloc(max_lat * sizeof *lat);
    long nlat = 0;
    long sent = 0, answered = 0, late = 0, rc[4] = {0};
    static uint8_t out[BATCH][SLOT], in[BATCH][SLOT];
    struct mmsghdr smsg[BATCH], rmsg[BATCH];
    struct iovec siov[BATCH], riov[BATCH];
    for (int i = 0; i < BATCH; i++) {
        riov[i] = (struct iovec){in[i], SLOT};
        rmsg[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &riov[i], .msg_iovlen = 1}};
    }
    long total = limit ? limit : (long)(rate * seconds);
    double t0 = now_s(), last_send = t0;
    for (;;) {
        double t = now_s();
        long due = (long)((t - t0) * rate) + 1;
        if (due > total) due = total;
        while (sent < due) {
            int k = 0;
            for (; k < BATCH && sent + k < due; k++) {
                long qi = (sent + k) % nq;
                uint32_t off = offs[qi];
                size_t len = data[off] << 8 | data[off + 1];
                memcpy(out[k], data + off + 2, len);
                uint16_t id = (uint16_t)(sent + k);
                out[k][0] = id >> 8, out[k][1] = id & 0xff;
                siov[k] = (struct iovec){out[k], len};
                smsg[k] = (struct mmsghdr){.msg_hdr = {.msg_iov = &siov[k], .msg_iovlen = 1}};
                sent_at[id] = t;
                pending[id] = 1;
            }
            int s = sendmmsg(fd, smsg, k, 0);
            if (s <= 0) {
                if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) break;
                perror("sendmmsg");
                return 2;
            }
            sent += s;
            last_send = t;
        }
        int r = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, 0);
        if (r > 0) {
            double tr = now_s();
            for (int i = 0; i < r; i++) {
                uint8_t *m = in[i];
                if (rmsg[i].msg_len < 12) continue;
                uint16_t id = m[0] << 8 | m[1];
                if (!pending[id]) { late++; continue; }
                pending[id] = 0;
                answered++;
                if (nlat < max_lat) lat[nlat++] = (tr - sent_at[id]) * 1000.0;
                int code = m[3] & 0x0f;
                rc[code == 0 ? 0 : code == 3 ? 1 : code == 2 ? 2 : 3]++;
            }
            continue;
        }
        if (sent >= total) {
            if (answered >= sent || now_s() - last_send > 1.0) break;
            struct pollfd p = {fd, POLLIN, 0};
            poll(&p, 1, 10);
        } else if (r <= 0) {
            /* Sleep to the next batch's due time, without oversleeping. */
            double next = t0 + (sent + 1) / rate;
            double wait = next - now_s();
            if (wait > 0.0002) {
                struct pollfd p = {fd, POLLIN, 0};
                poll(&p, 1, wait > 0.001 ? 1 : 0);
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(long)(nlat * 0.99)] : 0;
    /* The p99 of everything sent, a lost query counting as later than any
     * answer: a server that drops a burst gets no shorter tail for it. */
    char p99_sent[32] = "lost";
    long k = (long)(sent * 0.99);
    if (k < nlat) snprintf(p99_sent, sizeof p99_sent, "%.3f", lat[k]);
    printf("sent=%ld answered=%ld lost=%ld noerror=%ld nxdomain=%ld servfail=%ld other=%ld "
           "p50_ms=%.3f p99_ms=%.3f p99_sent_ms=%s late=%ld seconds=%.2f\n",
           sent, answered, sent - answered, rc[0], rc[1], rc[2], rc[3], p50, p99, p99_sent,
           late, last_send - t0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "gen")) return gen(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "run")) return run(argc, argv);
    fprintf(stderr, "usage: loadgen gen --seed S --count N --kind geo|flood|static [--v6 F] > FILE\n"
                    "       loadgen run --file FILE --port P [--rate Q] [--seconds T] [--limit N]\n");
    return 2;
}
