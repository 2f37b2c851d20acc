/*
 * fuzz_at_parse.c - libFuzzer target for the pure AT line parser (firmware/at_parse.c).
 *
 * Feeds arbitrary bytes to at_parse_line (libFuzzer's buffer is exactly size bytes, so ASan
 * catches any read past len) and, on success, checks the result's invariants; the same bytes
 * also go to at_arg_int / at_arg_uint64 as one arg, checked against a reference. Any violation
 * is __builtin_trap(). No main: link with -fsanitize=fuzzer.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "firmware/at_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() can be compiled out; a trap cannot, and libFuzzer reports it with the input. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static bool fz_is_ext_prefix(char c)
{
    return c != '\0' && strchr("+!%-.:_$^", c) != NULL;
}

/*
 * The canonical decimal form of a number text: sign '+' dropped, leading zeros dropped, "-0"
 * made "0". Only called on texts the helpers accepted, so they are [+-]digits.
 */
static void fz_canon(const char *s, size_t len, char *buf, size_t cap)
{
    size_t i = 0, n = 0;
    bool neg = false;

    if (len > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    while (i + 1 < len && s[i] == '0')
        i++;
    if (neg && !(len - i == 1 && s[i] == '0') && n < cap - 1)
        buf[n++] = '-';
    for (; i < len && n < cap - 1; i++)
        buf[n++] = s[i];
    buf[n] = '\0';
}

/* The number helpers must agree with each other and with the text they read. */
static void fz_check_numbers(const struct at_arg *a)
{
    char want[64], got[64];
    long v;
    uint64_t u;
    int rc_l = at_arg_int(a, LONG_MIN, LONG_MAX, &v);
    int rc_u = at_arg_uint64(a, 0, UINT64_MAX, &u);

    FZ_CHECK(rc_l == 0 || rc_l == -EINVAL || rc_l == -ERANGE || rc_l == -ENOENT);
    FZ_CHECK(rc_u == 0 || rc_u == -EINVAL || rc_u == -ERANGE || rc_u == -ENOENT);
    FZ_CHECK((rc_l == -ENOENT) == (a->kind == AT_ARG_OMITTED));
    FZ_CHECK((rc_l == -EINVAL) == (rc_u == -EINVAL)); /* same syntax for both */
    if (rc_l == 0) {
        fz_canon(a->s, a->len, want, sizeof(want));
        snprintf(got, sizeof(got), "%ld", v);
        FZ_CHECK(strcmp(want, got) == 0);
        if (v >= 0)
            FZ_CHECK(rc_u == 0 && u == (uint64_t)v);
    }
    if (rc_u == 0) {
        fz_canon(a->s, a->len, want, sizeof(want));
        snprintf(got, sizeof(got), "%llu", (unsigned long long)u);
        FZ_CHECK(strcmp(want, got) == 0);
    }
}

/* An arg lies inside the used arena, ends with a NUL there, and has the shape its kind says. */
static void fz_check_arg(const struct at_parse_result *res, const struct at_req *r,
                         const struct at_arg *a)
{
    const char *lo = res->arena, *hi = res->arena + res->used;

    FZ_CHECK(a->kind == AT_ARG_OMITTED || a->kind == AT_ARG_STR || a->kind == AT_ARG_BARE);
    FZ_CHECK(a->s != NULL && a->s >= lo && a->s < hi && a->len < (size_t)(hi - a->s));
    FZ_CHECK(a->s[a->len] == '\0');
    if (memchr(a->s, '\0', a->len) == NULL)
        FZ_CHECK(strlen(a->s) == a->len);
    else
        FZ_CHECK(a->kind == AT_ARG_STR); /* only the \00 escape makes a NUL */
    if (a->kind == AT_ARG_OMITTED)
        FZ_CHECK(a->len == 0);
    if (a->kind == AT_ARG_BARE && strcmp(r->name, "D") != 0) {
        /* A bare token is trimmed, non-empty and holds no separator or quote. */
        FZ_CHECK(a->len > 0 && a->s[0] != ' ' && a->s[0] != '\t');
        FZ_CHECK(a->s[a->len - 1] != ' ' && a->s[a->len - 1] != '\t');
        FZ_CHECK(memchr(a->s, ',', a->len) == NULL && memchr(a->s, ';', a->len) == NULL);
        FZ_CHECK(memchr(a->s, '"', a->len) == NULL);
    }
    FZ_CHECK(at_arg_is(a, a->s) == (a->kind != AT_ARG_OMITTED && strlen(a->s) == a->len));
    fz_check_numbers(a);
}

/* A command's name, form and arg count agree with each other and with its kind of command. */
static void fz_check_req(const struct at_parse_result *res, const struct at_req *r)
{
    size_t nl = strnlen(r->name, sizeof(r->name));
    size_t k;

    FZ_CHECK(nl >= 1 && nl < sizeof(r->name));
    for (k = 0; k < nl; k++)
        FZ_CHECK(!(r->name[k] >= 'a' && r->name[k] <= 'z')); /* names are upper-cased */
    FZ_CHECK(r->basic == !fz_is_ext_prefix(r->name[0]));
    FZ_CHECK(r->form <= AT_FORM_SET);
    FZ_CHECK(r->nargs <= AT_PARSE_MAX_ARGS);
    if (!r->basic)
        FZ_CHECK(!r->has_num && (r->form == AT_FORM_SET) == (r->nargs > 0));
    if (r->basic && r->name[0] != 'S')
        FZ_CHECK(r->form == AT_FORM_EXEC);
    if (r->basic && r->name[0] == 'S')
        FZ_CHECK(r->has_num && r->num >= 0 && r->nargs == (r->form == AT_FORM_SET));
    for (k = 0; k < r->nargs; k++)
        fz_check_arg(res, r, &r->args[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Two results on the stack (about 11 KiB each): the target keeps no state between runs. */
    struct at_parse_result res, again;
    const char *line = (const char *)data;
    struct at_arg whole = {AT_ARG_BARE, line, size};
    size_t total = 0;
    unsigned i, k;
    int rc;

    /* The raw bytes as one arg: the number helpers must never read past len either. */
    fz_check_numbers(&whole);

    rc = at_parse_line(line, size, &res);
    FZ_CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -ENOMSG);
    if (size > AT_PARSE_MAX_LINE)
        FZ_CHECK(rc == -E2BIG);
    if (rc != 0) {
        FZ_CHECK(res.n == 0);
        return 0;
    }
    FZ_CHECK(size >= 2 && size <= AT_PARSE_MAX_LINE && memchr(line, '\0', size) == NULL);
    FZ_CHECK(res.n <= AT_PARSE_MAX_CMDS);
    FZ_CHECK(res.used >= 1 && res.used <= sizeof(res.arena) && res.arena[0] == '\0');
    for (i = 0; i < res.n; i++) {
        fz_check_req(&res, &res.reqs[i]);
        for (k = 0; k < res.reqs[i].nargs; k++)
            total += res.reqs[i].args[k].len;
    }
    FZ_CHECK(total < size); /* unescaping never grows text, and "AT" is never an arg */

    /* Pure: the same bytes give the same commands and the same arena. */
    FZ_CHECK(at_parse_line(line, size, &again) == 0);
    FZ_CHECK(again.n == res.n && again.used == res.used);
    FZ_CHECK(memcmp(again.arena, res.arena, res.used) == 0);
    for (i = 0; i < res.n; i++) {
        FZ_CHECK(strcmp(again.reqs[i].name, res.reqs[i].name) == 0);
        FZ_CHECK(again.reqs[i].form == res.reqs[i].form);
        FZ_CHECK(again.reqs[i].nargs == res.reqs[i].nargs);
    }
    return 0;
}
