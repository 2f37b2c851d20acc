/*
 * at_parse.c - the pure AT command-line parser (V.250 syntax).
 *
 * Turns one assembled line ("AT..." without the final <CR>) into typed requests: basic commands,
 * S-registers, dial, extended commands with their form and unescaped arguments. It is pure: no
 * I/O, no allocation, no state outside the caller's struct at_parse_result. It is NOT the
 * dispatcher: it knows no command names, arities or value ranges, and never answers the host.
 */
#include "firmware/at_parse.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

/*
 * Grammar accepted (blanks are ' ' and '\t'; "|" alternatives, [] optional, {} repeated):
 *
 *   line     = ("A"|"a") ("T"|"t") { blanks cmd [blanks ";"] } blanks
 *   cmd      = basic | sreg | dial | ext
 *   basic    = ["&"] letter [digits]                     E0  &W  I  X4
 *   sreg     = "S" digits [ "?" | "=?" | "=" blanks digits ]
 *   dial     = "D" text up to ";" or end, quotes kept    D*99#  D10086;
 *   ext      = prefix blanks letter {namechar} blanks [ "?" | "=" blanks "?" | "=" args ]
 *   args     = arg { "," arg }
 *   arg      = blanks ( "" | '"' qtext '"' blanks | bare )
 *
 * An ext command must be followed by ';' or the end; basic commands may run together. A ';' is
 * only accepted right after a command, so "AT;" and "AT+A;;+B" are syntax errors.
 */

/* Where the parser is in the line; lives on at_parse_line's stack, so the parser is reentrant. */
struct at_parse_cur {
    const char *p;
    size_t len;
    size_t i;
    struct at_parse_result *out;
};

/* Character classes by hand: <ctype.h> depends on the locale and is undefined for negative char. */
static bool at_parse_is_blank(int c)
{
    return c == ' ' || c == '\t';
}

static bool at_parse_is_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool at_parse_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static char at_parse_upper(int c)
{
    return (char)((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
}

static int at_parse_hexval(int c)
{
    if (at_parse_is_digit(c))
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* V.250 reserves "+!%-.:_" as extended prefixes; vendors also use '$' (Qualcomm) and '^' (HiSi). */
static bool at_parse_is_ext_prefix(int c)
{
    return c > 0 && strchr("+!%-.:_$^", c) != NULL;
}

static bool at_parse_is_name_char(int c)
{
    return at_parse_is_alpha(c) || at_parse_is_digit(c) || (c > 0 && strchr("!%-./:_", c) != NULL);
}

/* The next byte as 0..255, or -1 at the end of the line: every read goes through here. */
static int at_parse_peek(const struct at_parse_cur *c)
{
    return c->i < c->len ? (unsigned char)c->p[c->i] : -1;
}

static void at_parse_skip_blanks(struct at_parse_cur *c)
{
    while (at_parse_is_blank(at_parse_peek(c)))
        c->i++;
}

/*
 * Append one byte to the arena, always keeping room for the terminating NUL.
 * The arena cannot fill up on a line within AT_PARSE_MAX_LINE: every arg's text plus its NUL is
 * paid for by bytes of the line that never reach the arena (a BARE arg by the '=' or ',' before
 * it, a STR by its two quotes, escapes shrink, OMITTED args share arena[0]) and "AT" pays for
 * arena[0]. The check stays because the proof is about this file and the limit about the caller.
 */
static int at_parse_put(struct at_parse_cur *c, char ch)
{
    struct at_parse_result *r = c->out;

    if (r->used >= sizeof(r->arena) - 1)
        return -E2BIG;
    r->arena[r->used++] = ch;
    return 0;
}

/* Close the text started at arena offset start into arg a. */
static void at_parse_finish_arg(struct at_parse_cur *c, struct at_arg *a, enum at_arg_kind kind,
                                size_t start)
{
    struct at_parse_result *r = c->out;

    /* at_parse_put kept the last byte free, so this never writes past the arena. */
    r->arena[r->used++] = '\0';
    a->kind = kind;
    a->s = &r->arena[start];
    a->len = r->used - 1 - start;
}

/* Decimal digits at the cursor into a long; -EINVAL if none or if the value overflows. */
static int at_parse_number(struct at_parse_cur *c, long *val)
{
    long v = 0;
    int d;

    if (!at_parse_is_digit(at_parse_peek(c)))
        return -EINVAL;
    while (at_parse_is_digit(d = at_parse_peek(c))) {
        if (v > (LONG_MAX - (d - '0')) / 10)
            return -EINVAL;
        v = v * 10 + (d - '0');
        c->i++;
    }
    *val = v;
    return 0;
}

/* A quoted string; the cursor is on the opening quote. \HH is a byte, \x any other x is x. */
static int at_parse_quoted(struct at_parse_cur *c, struct at_arg *a)
{
    size_t start = c->out->used;
    int ch, hi, lo, rc;

    c->i++;
    for (;;) {
        ch = at_parse_peek(c);
        if (ch < 0)
            return -EINVAL; /* unterminated */
        if (ch == '"') {
            c->i++;
            break;
        }
        if (ch == '\\') {
            /* Both lookaheads are bounds-checked: a '\' as the last byte is unterminated. */
            hi = c->i + 1 < c->len ? at_parse_hexval((unsigned char)c->p[c->i + 1]) : -1;
            lo = c->i + 2 < c->len ? at_parse_hexval((unsigned char)c->p[c->i + 2]) : -1;
            if (hi >= 0 && lo >= 0) {
                ch = hi * 16 + lo;
                c->i += 3;
            } else if (c->i + 1 < c->len) {
                ch = (unsigned char)c->p[c->i + 1];
                c->i += 2;
            } else {
                return -EINVAL;
            }
        } else {
            c->i++;
        }
        rc = at_parse_put(c, (char)ch);
        if (rc)
            return rc;
    }
    at_parse_finish_arg(c, a, AT_ARG_STR, start);

    /* Only blanks may sit between the closing quote and the next separator: "a"b is an error. */
    at_parse_skip_blanks(c);
    ch = at_parse_peek(c);
    return (ch < 0 || ch == ',' || ch == ';') ? 0 : -EINVAL;
}

/* A bare token up to ',' ';' or the end, blanks around it stripped; blanks inside are kept. */
static int at_parse_bare(struct at_parse_cur *c, struct at_arg *a)
{
    size_t start = c->out->used, end = start;
    int ch, rc;

    while ((ch = at_parse_peek(c)) >= 0 && ch != ',' && ch != ';') {
        /* A quote here means the host mixed quoting (x"y"); guessing would hide its bug. */
        if (ch == '"')
            return -EINVAL;
        rc = at_parse_put(c, (char)ch);
        if (rc)
            return rc;
        if (!at_parse_is_blank(ch))
            end = c->out->used;
        c->i++;
    }
    c->out->used = end; /* drop trailing blanks (leading ones were skipped by the caller) */
    at_parse_finish_arg(c, a, AT_ARG_BARE, start);
    return 0;
}

/* The argument list after '='; the cursor is just past the '='. */
static int at_parse_args(struct at_parse_cur *c, struct at_req *r)
{
    struct at_arg *a;
    int ch, rc;

    at_parse_skip_blanks(c);
    ch = at_parse_peek(c);
    if (ch < 0 || ch == ';')
        return -EINVAL; /* "AT+X=" sets nothing: the brief calls that unparseable */
    for (;;) {
        if (r->nargs >= AT_PARSE_MAX_ARGS)
            return -E2BIG;
        a = &r->args[r->nargs++];
        at_parse_skip_blanks(c);
        ch = at_parse_peek(c);
        if (ch < 0 || ch == ',' || ch == ';') {
            /* Omitted: point at the empty string kept at arena[0], so that every arg's s is a
             * valid C string and a handler that forgets to check the kind reads "" safely. */
            a->kind = AT_ARG_OMITTED;
            a->s = c->out->arena;
            a->len = 0;
            rc = 0;
        } else if (ch == '"') {
            rc = at_parse_quoted(c, a);
        } else {
            rc = at_parse_bare(c, a);
        }
        if (rc)
            return rc;
        if (at_parse_peek(c) != ',')
            return 0;
        c->i++;
    }
}

/* An extended command; the cursor is on its prefix character. */
static int at_parse_ext(struct at_parse_cur *c, struct at_req *r)
{
    size_t k = 0;
    int ch;

    r->name[k++] = c->p[c->i++];
    at_parse_skip_blanks(c); /* "AT + CSQ": hosts put blanks around the prefix */
    /* V.250 5.4.1: a name starts with a letter; this also refuses the empty name of "AT+=1". */
    if (!at_parse_is_alpha(at_parse_peek(c)))
        return -EINVAL;
    while (at_parse_is_name_char(ch = at_parse_peek(c))) {
        if (k >= AT_PARSE_MAX_NAME - 1)
            return -E2BIG;
        r->name[k++] = at_parse_upper(ch);
        c->i++;
    }
    r->name[k] = '\0';

    at_parse_skip_blanks(c); /* "AT+FOTAIP =1.2.3.4,80" */
    ch = at_parse_peek(c);
    if (ch == '?') {
        r->form = AT_FORM_READ;
        c->i++;
    } else if (ch == '=') {
        c->i++;
        at_parse_skip_blanks(c);
        if (at_parse_peek(c) == '?') {
            r->form = AT_FORM_TEST;
            c->i++;
        } else {
            int rc;

            r->form = AT_FORM_SET;
            rc = at_parse_args(c, r);
            if (rc)
                return rc;
        }
    } else {
        r->form = AT_FORM_EXEC; /* checked below: only ';' or the end may follow */
    }
    at_parse_skip_blanks(c);
    ch = at_parse_peek(c);
    return (ch < 0 || ch == ';') ? 0 : -EINVAL; /* "AT+C MEE", "AT+CSQ?1" */
}

/* S-register; the cursor is just past the 'S'. The value of a set is kept as BARE digits. */
static int at_parse_sreg(struct at_parse_cur *c, struct at_req *r)
{
    size_t start;
    int rc;

    /* The register number is required ("ATS?" is an error) and must fit a long. */
    rc = at_parse_number(c, &r->num);
    if (rc)
        return rc;
    r->has_num = true;
    snprintf(r->name, sizeof(r->name), "S%ld", r->num); /* at most "S" + 19 digits */

    if (at_parse_peek(c) == '?') {
        r->form = AT_FORM_READ;
        c->i++;
        return 0;
    }
    if (at_parse_peek(c) != '=')
        return 0; /* "ATS3": V.250's obsolete "select register"; the dispatcher decides */
    c->i++;
    if (at_parse_peek(c) == '?') {
        r->form = AT_FORM_TEST;
        c->i++;
        return 0;
    }
    at_parse_skip_blanks(c);
    if (!at_parse_is_digit(at_parse_peek(c)))
        return -EINVAL;
    r->form = AT_FORM_SET;
    start = c->out->used;
    while (at_parse_is_digit(at_parse_peek(c))) {
        rc = at_parse_put(c, c->p[c->i++]);
        if (rc)
            return rc;
    }
    at_parse_finish_arg(c, &r->args[0], AT_ARG_BARE, start);
    r->nargs = 1;
    return 0;
}

/*
 * Dial: V.250 gives D the rest of the command up to ';', quotes included, so "ATD*99#" (PPP) and
 * "ATD10086;" do not trip over '*' and '#'. The text is kept verbatim; the dispatcher reads it.
 */
static int at_parse_dial(struct at_parse_cur *c, struct at_req *r)
{
    size_t start, end;
    bool quoted = false;
    int ch, rc;

    at_parse_skip_blanks(c);
    start = end = c->out->used;
    while ((ch = at_parse_peek(c)) >= 0 && (quoted || ch != ';')) {
        if (ch == '"')
            quoted = !quoted;
        rc = at_parse_put(c, (char)ch);
        if (rc)
            return rc;
        if (!at_parse_is_blank(ch))
            end = c->out->used;
        c->i++;
    }
    if (quoted)
        return -EINVAL;
    c->out->used = end;
    if (end > start) {
        at_parse_finish_arg(c, &r->args[0], AT_ARG_BARE, start);
        r->nargs = 1;
    }
    r->dial_semicolon = ch == ';';
    return 0;
}

/* A basic command ("E0", "&W", "I", "S3=13", "D*99#"); the cursor is on its first byte. */
static int at_parse_basic(struct at_parse_cur *c, struct at_req *r)
{
    size_t k = 0;
    int ch = at_parse_peek(c);

    r->basic = true;
    if (ch == '&') {
        r->name[k++] = '&';
        c->i++;
        ch = at_parse_peek(c);
    }
    if (!at_parse_is_alpha(ch))
        return -EINVAL; /* a digit, '=' or any other byte where a command must start */
    r->name[k++] = at_parse_upper(ch);
    r->name[k] = '\0';
    c->i++;

    /* S and D take more than digits after them; "&S" and "&D" are plain basic commands. */
    if (k == 1 && r->name[0] == 'S')
        return at_parse_sreg(c, r);
    if (k == 1 && r->name[0] == 'D')
        return at_parse_dial(c, r);
    /* No blanks between the letter and its number: "ATE 0" is E, then a stray '0' (an error). */
    if (!at_parse_is_digit(at_parse_peek(c)))
        return 0;
    r->has_num = true;
    return at_parse_number(c, &r->num);
}

int at_parse_line(const char *line, size_t len, struct at_parse_result *out)
{
    struct at_parse_cur cur;
    struct at_req *r;
    bool after_cmd = false;
    int ch, rc;

    if (out == NULL)
        return -EINVAL;
    /* Reset first, so that even an early error leaves a result that says "no commands". */
    out->n = 0;
    out->arena[0] = '\0'; /* the shared empty string of OMITTED args */
    out->used = 1;
    if (line == NULL)
        return -EINVAL;
    /* Length before anything else: an over-long line is -E2BIG whatever it holds. */
    if (len > AT_PARSE_MAX_LINE)
        return -E2BIG;
    if (len < 2 || at_parse_upper((unsigned char)line[0]) != 'A' ||
        at_parse_upper((unsigned char)line[1]) != 'T')
        return -ENOMSG;
    /* A NUL cannot be sent in a quoted string either (use \00); rejecting it here means no later
     * step has to wonder whether a C string function would stop early. */
    if (memchr(line, '\0', len) != NULL)
        return -EINVAL;

    cur = (struct at_parse_cur){.p = line, .len = len, .i = 2, .out = out};
    for (;;) {
        at_parse_skip_blanks(&cur);
        ch = at_parse_peek(&cur);
        if (ch < 0)
            break;
        if (ch == ';') {
            /* A separator needs a command before it: "AT;" and ";;" are most likely a host bug. */
            if (!after_cmd) {
                rc = -EINVAL;
                goto out;
            }
            cur.i++;
            after_cmd = false;
            continue;
        }
        if (out->n >= AT_PARSE_MAX_CMDS) {
            rc = -E2BIG;
            goto out;
        }
        /* Counted before parsing, so a failed command is dropped with the rest by out: below. */
        r = &out->reqs[out->n++];
        memset(r, 0, sizeof(*r));
        rc = at_parse_is_ext_prefix(ch) ? at_parse_ext(&cur, r) : at_parse_basic(&cur, r);
        if (rc)
            goto out;
        after_cmd = true;
    }
    return 0;
out:
    out->n = 0;
    return rc;
}

/*
 * Sign and magnitude of a decimal arg. Digits past the point where the magnitude exceeds any
 * 64-bit value keep being checked (so "1x" is still -EINVAL) but report -ERANGE.
 */
static int at_parse_arg_digits(const struct at_arg *a, bool *neg, uint64_t *mag)
{
    size_t i = 0;
    bool big = false;
    uint64_t v = 0;
    unsigned d;

    if (a == NULL)
        return -EINVAL;
    if (a->kind == AT_ARG_OMITTED)
        return -ENOENT;
    if (a->kind != AT_ARG_STR && a->kind != AT_ARG_BARE)
        return -EINVAL;
    *neg = false;
    if (a->len > 0 && (a->s[0] == '+' || a->s[0] == '-')) {
        *neg = a->s[0] == '-';
        i = 1;
    }
    if (i >= a->len)
        return -EINVAL; /* "", "+", "-" */
    for (; i < a->len; i++) {
        if (!at_parse_is_digit((unsigned char)a->s[i]))
            return -EINVAL;
        d = (unsigned)(a->s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
    }
    *mag = v;
    return big ? -ERANGE : 0;
}

int at_arg_int(const struct at_arg *a, long min, long max, long *out)
{
    bool neg;
    uint64_t mag;
    long v;
    int rc = at_parse_arg_digits(a, &neg, &mag);

    if (rc)
        return rc;
    /* -(LONG_MIN) does not fit a long: build negatives from -(mag - 1) - 1. */
    if (!neg && mag > (uint64_t)LONG_MAX)
        return -ERANGE;
    if (neg && mag > (uint64_t)LONG_MAX + 1)
        return -ERANGE;
    v = neg ? (mag == 0 ? 0 : -(long)(mag - 1) - 1) : (long)mag;
    if (v < min || v > max)
        return -ERANGE;
    if (out)
        *out = v;
    return 0;
}

int at_arg_uint64(const struct at_arg *a, uint64_t min, uint64_t max, uint64_t *out)
{
    bool neg;
    uint64_t mag;
    int rc = at_parse_arg_digits(a, &neg, &mag);

    if (rc)
        return rc;
    /* A negative number is a number (so -ERANGE, like a too-big one), except "-0" which is 0. */
    if (neg && mag != 0)
        return -ERANGE;
    if (mag < min || mag > max)
        return -ERANGE;
    if (out)
        *out = mag;
    return 0;
}

/* Compared by a->len, not strlen: "ke\00y" is not "ke". ASCII case only, no locale. */
bool at_arg_is(const struct at_arg *a, const char *word)
{
    size_t i;

    if (a == NULL || word == NULL || a->kind == AT_ARG_OMITTED)
        return false;
    for (i = 0; i < a->len; i++) {
        /* word[i] == '\0' ends the word early: unequal (also guards reading past it). */
        if (word[i] == '\0' ||
            at_parse_upper((unsigned char)a->s[i]) != at_parse_upper((unsigned char)word[i]))
            return false;
    }
    return word[i] == '\0';
}

int at_arg_hex(const struct at_arg *a, size_t want, uint8_t *out, size_t cap)
{
    if (a == NULL || (out == NULL && want))
        return -EINVAL;
    if (a->kind == AT_ARG_OMITTED)
        return -ENOENT;
    if (a->len % 2)
        return -EINVAL;
    /* Every digit is checked before the length, so a garbled payload says so whatever its size. */
    for (size_t i = 0; i < a->len; i++)
        if (at_parse_hexval((unsigned char)a->s[i]) < 0)
            return -EINVAL;
    if (a->len / 2 != want)
        return -EMSGSIZE;
    if (cap < want)
        return -ENOSPC;
    for (size_t i = 0; i < want; i++)
        out[i] = (uint8_t)(at_parse_hexval((unsigned char)a->s[2 * i]) << 4 |
                           at_parse_hexval((unsigned char)a->s[2 * i + 1]));
    return 0;
}
