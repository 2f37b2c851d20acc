/*
 * at_parse.h - the pure AT command-line parser (V.250 syntax, no knowledge of any command).
 *
 * The line assembler hands over one line without its final <CR>; at_parse_line() splits it into
 * typed requests that the dispatcher checks against the model's command table. Everything lives
 * in the caller's struct at_parse_result: no globals, no allocation, safe on any number of ports
 * at once and from any callback.
 */
#ifndef MODTWIN_AT_PARSE_H
#define MODTWIN_AT_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AT_PARSE_MAX_CMDS 16
#define AT_PARSE_MAX_ARGS 16
#define AT_PARSE_MAX_NAME 24   /* includes the prefix char ("+QFOTADL") and the NUL */
#define AT_PARSE_MAX_LINE 4096 /* bytes of one line, "AT" included; the arena holds arg text */

enum at_form { AT_FORM_EXEC, AT_FORM_READ, AT_FORM_TEST, AT_FORM_SET };

enum at_arg_kind {
    AT_ARG_OMITTED, /* nothing between the separators: "1,,50", trailing ",", "AT+X=," */
    AT_ARG_STR,     /* a quoted string, unescaped; "" is a STR of len 0, not OMITTED */
    AT_ARG_BARE,    /* an unquoted token, surrounding blanks stripped, case kept */
};

/*
 * One argument. s points into the result's arena and is NUL-terminated; for OMITTED it points at
 * an empty string in the arena. A quoted string may hold NUL bytes made by the escape \00, so len
 * (not strlen) is the length.
 */
struct at_arg {
    enum at_arg_kind kind;
    const char *s;
    size_t len;
};

/*
 * One command of the line. Names are upper-cased, argument text is not.
 *   extended  "+CMEE", "^SYSINFO", "$QCX": basic = false, has_num = false.
 *   basic     "E", "&W", "I": has_num/num give the digits after the letter ("E0" -> 0, "ATI" ->
 *             has_num = false). Form is always EXEC.
 *   S-reg     "S3": basic, has_num = true, num = 3 (name is canonical: "S003" -> "S3"); form
 *             READ ("S3?"), TEST ("S3=?"), SET ("S3=13": args[0] is the BARE digits "13") or
 *             EXEC ("S3").
 *   dial      "D": basic; the rest of the command up to ';' (quotes respected) is args[0], BARE and
 *             verbatim ("ATD*99#"); dial_semicolon tells that a ';' ended it (27.007 voice call).
 */
struct at_req {
    char name[AT_PARSE_MAX_NAME];
    bool basic;
    bool has_num;
    long num;
    enum at_form form;
    unsigned nargs; /* omitted args count: "=1,," has 3 args; EXEC/READ/TEST have 0 */
    struct at_arg args[AT_PARSE_MAX_ARGS];
    bool dial_semicolon;
};

struct at_parse_result {
    unsigned n; /* commands in reqs[]; 0 for a bare "AT" */
    struct at_req reqs[AT_PARSE_MAX_CMDS];
    char arena[AT_PARSE_MAX_LINE + 64];
    size_t used; /* arena bytes in use */
};

/*
 * Parse one line of len bytes (no final <CR>, NUL bytes allowed only to be rejected) into *out.
 * Reads line[0..len) and nothing else; never asserts on the input.
 * Returns 0 when the whole line parsed; then out->reqs[0..n) are valid until *out is reused.
 *   -ENOMSG  the line does not start with "AT" in any case (leading blanks are not skipped)
 *   -EINVAL  syntax: NUL byte, unterminated quote, text after a closing quote other than ',' or
 *            ';', a bad char in or after a name, an empty name ("AT+=1"), a number that overflows
 *            a long, '=' followed by nothing ("AT+CMEE=", "ATS3="), a '"' inside a bare token,
 *            a ';' that follows no command ("AT;", ";;"); also out == NULL or line == NULL
 *   -E2BIG   more than AT_PARSE_MAX_CMDS commands or AT_PARSE_MAX_ARGS args in one command, a name
 *            of more than AT_PARSE_MAX_NAME - 1 chars, or len > AT_PARSE_MAX_LINE
 * On error out->n is 0 and nothing in *out may be used. Pure; reentrant.
 */
int at_parse_line(const char *line, size_t len, struct at_parse_result *out);

/*
 * Read a decimal integer (optional '+'/'-', then digits only; no blanks, no hex) from a BARE arg,
 * or from a STR arg holding the same. Returns 0 and stores to *out (if out is not NULL);
 * -ENOENT if the arg is OMITTED; -EINVAL if it is not such a number (or a is NULL);
 * -ERANGE if it is a number outside [min, max], however many digits it has.
 */
int at_arg_int(const struct at_arg *a, long min, long max, long *out);

/* The same as at_arg_int for unsigned 64-bit values (2^32, sizes). "-0" is 0; "-1" is -ERANGE. */
int at_arg_uint64(const struct at_arg *a, uint64_t min, uint64_t max, uint64_t *out);

/* True if a is a STR or BARE arg equal to word ignoring ASCII case; false if OMITTED or NULL. */
bool at_arg_is(const struct at_arg *a, const char *word);

/*
 * Decode a hex payload argument (OneMO's AT+MFWDLOAD=<off>,<len>,<hex>): BARE or STR, an even
 * number of hex digits of either case, nothing else. want: the byte count the command announced
 * (the payload must be exactly that long). Writes want bytes to out (cap >= want).
 * Returns 0; -ENOENT if OMITTED; -EINVAL for an odd length or a non-hex character (or NULL
 * args); -EMSGSIZE when the digits do not make exactly `want` bytes; -ENOSPC when cap < want.
 */
int at_arg_hex(const struct at_arg *a, size_t want, uint8_t *out, size_t cap);

#endif /* MODTWIN_AT_PARSE_H */
