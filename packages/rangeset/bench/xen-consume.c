/*
 * The C rate of Xen's rangeset_consume_ranges (xen/common/rangeset.c) consuming a whole set, for
 * workload (f) of rangeset.bench.ts, which compiles this file with gcc -O2 and runs it once per round.
 *
 * The algorithm as Xen's: ranges are heap nodes on a doubly linked list (struct range with a
 * list_head, one xmalloc'd node per range); consuming takes the first node, calls the callback through
 * a function pointer with (s, e, ctxt, &consumed), advances s, and when the range is used up unlinks
 * the node (list_del) and frees it (destroy_range). Written for this benchmark after reading Xen's
 * source, not copied from it. Estimates, each stated in the benchmark's output: glibc's malloc/free
 * stand in for Xen's xmalloc/xfree; the read-write lock Xen takes once per call is left out (one call
 * consumes the whole set here, so it would cost nothing measurable); the nodes are allocated in order,
 * as a set built in ascending order would be.
 *
 * Usage: xen-consume <file> [cpu|wall]. <file> holds the ranges the JavaScript structures consume,
 * as the benchmark wrote them: ascending, disjoint, non-adjacent, each a pair of little-endian 64-bit
 * unsigned integers (start, end). Builds the list from them (untimed), consumes it all (timed: the
 * process's CPU time by default, as the benchmark times JavaScript; the wall clock with "wall") and
 * prints "<seconds> <ranges consumed> <values consumed>", which the benchmark checks against the
 * JavaScript runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct list_head {
    struct list_head *next, *prev;
};

struct range {
    struct list_head list;
    unsigned long s, e;
};

static struct list_head range_list = { &range_list, &range_list };

static void list_add_tail(struct list_head *node, struct list_head *head)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static void list_del(struct list_head *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
}

struct counts {
    unsigned long ranges, values;
};

/* The callback takes the whole range, as a map of a whole BAR would; noinline as a call through
 * Xen's function pointer is. */
static __attribute__((noinline)) int take_all(unsigned long s, unsigned long e, void *ctxt,
                                              unsigned long *consumed)
{
    struct counts *c = ctxt;
    c->ranges++;
    c->values += e - s + 1;
    *consumed = e - s + 1;
    return 0;
}

static int consume_ranges(int (*cb)(unsigned long, unsigned long, void *, unsigned long *),
                          void *ctxt)
{
    int rc = 0;
    while (range_list.next != &range_list) {
        unsigned long consumed = 0;
        struct range *x = (struct range *)range_list.next;
        rc = cb(x->s, x->e, ctxt, &consumed);
        x->s += consumed;
        if (x->s > x->e) {
            list_del(&x->list);
            free(x);
        }
        if (rc)
            break;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: xen-consume <ranges file> [cpu|wall]\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (in == NULL) {
        perror(argv[1]);
        return 2;
    }
    unsigned long n = 0;
    unsigned long pair[2];
    while (fread(pair, sizeof(pair[0]), 2, in) == 2) {
        struct range *x = malloc(sizeof(*x));
        if (x == NULL)
            return 1;
        x->s = pair[0];
        x->e = pair[1];
        list_add_tail(&x->list, &range_list);
        n++;
    }
    fclose(in);
    struct counts c = { 0, 0 };
    clockid_t clock = argc > 2 && strcmp(argv[2], "wall") == 0 ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID;
    struct timespec t0, t1;
    clock_gettime(clock, &t0);
    int rc = consume_ranges(take_all, &c);
    clock_gettime(clock, &t1);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.9f %lu %lu\n", seconds, c.ranges, c.values);
    return rc != 0 || c.ranges != n;
}
