/*
 * The AT engine of one port: line assembly (echo, back-space, A/, the line limit), the parser,
 * a dispatcher over the model's command tables that checks form and arity before any handler
 * runs, V.250 result codes (ATV, ATQ), +CME ERROR per +CMEE, a URC queue that never cuts into a
 * response, and raw data modes (a prompt, then length-counted bytes) as an engine feature.
 * It knows no command itself: commands come in tables (struct at_cmd), one per family.
 */
#ifndef MODTWIN_FIRMWARE_AT_ENGINE_H
#define MODTWIN_FIRMWARE_AT_ENGINE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "firmware/at_parse.h"

#define AT_LINE_MAX AT_PARSE_MAX_LINE /* longest line, "AT" included; longer ones get ERROR */
#define AT_BACKLOG_MAX 8192           /* input held while a command runs */
#define AT_URC_MAX (256u << 10)       /* URC bytes held while a command runs */

/* What a handler returns. A value > 0 is a +CME ERROR code. */
enum at_result {
    AT_RES_OK = 0,
    AT_RES_ERROR = -1,   /* plain ERROR whatever +CMEE says */
    AT_RES_PENDING = -2, /* the handler finishes later with at_finish() */
    AT_RES_SILENT = -3,  /* the handler wrote its final result itself */
};

/* 27.007 codes the engine itself uses. */
enum {
    AT_CME_FAILURE = 0,
    AT_CME_NOT_ALLOWED = 3,
    AT_CME_NOT_SUPPORTED = 4,
    AT_CME_SIM_NOT_INSERTED = 10,
    AT_CME_SIM_BUSY = 14,
    AT_CME_MEMORY_FULL = 20,
    AT_CME_NOT_FOUND = 22,
    AT_CME_TEXT_TOO_LONG = 24,
    AT_CME_NO_NETWORK = 30,
    AT_CME_BAD_PARAM = 50,
    AT_CME_UNKNOWN = 100,
};

struct at_engine;

/* A command handler; ctx is the engine's handler context (the port of the module). */
typedef int at_handler_fn(struct at_engine *e, const struct at_req *r, void *ctx);

#define AT_F_EXEC (1u << AT_FORM_EXEC)
#define AT_F_READ (1u << AT_FORM_READ)
#define AT_F_TEST (1u << AT_FORM_TEST)
#define AT_F_SET (1u << AT_FORM_SET)

/*
 * One command. name as the parser spells it ("+CGMR", "E", "&W", "S3"). forms: the allowed
 * AT_F_* (a TEST form of an extended command is always accepted: with `test` set it prints that
 * line, without it the handler answers if AT_F_TEST is in forms, else plain OK). min/max_args
 * bound the SET form. fn runs for every accepted form but a static TEST.
 */
struct at_cmd {
    const char *name;
    unsigned forms;
    unsigned char min_args, max_args;
    const char *test;
    at_handler_fn *fn;
};

/* A family's table, sorted by name (strcmp) for a binary search; at_table_check() verifies. */
struct at_table {
    const char *family;
    const struct at_cmd *cmds;
    size_t n;
};

/* A family's +CMEE=2 texts: one entry per error code it returns. */
struct at_errtext {
    int code;
    const char *text;
};

/* The text of code in t[0, n), or NULL. */
const char *at_errtext_find(const struct at_errtext *t, size_t n, int code);

typedef void at_write_fn(void *ctx, const void *buf, size_t len);
typedef const char *at_errtext_fn(void *ctx, int code);

/*
 * Data mode sink: called with each chunk of host bytes while the engine is in data mode.
 * Returns AT_RES_PENDING to take more, or a final result (then the engine leaves data mode and
 * prints it). When `want` bytes have arrived the sink is called with done = true and must
 * return a final result.
 */
typedef int at_data_fn(void *ctx, const uint8_t *buf, size_t len, bool done);

struct at_engine_cfg {
    const struct at_table *const *tables; /* searched in order; the first match wins */
    size_t ntables;
    void *handler_ctx;
    at_write_fn *write; /* raw bytes to the host */
    void *write_ctx;
    const int *cmee;          /* +CMEE mode, shared by the module's ports */
    at_errtext_fn *errtext;   /* +CMEE=2 text for a code, or NULL */
    void *errtext_ctx;
    bool echo_default;        /* V.250: on */
};

enum at_line_state { AT_LS_IDLE, AT_LS_A, AT_LS_LINE };

struct at_engine {
    struct at_engine_cfg cfg;
    bool echo, verbose, quiet;
    uint8_t s3, s4, s5;
    enum at_line_state ls;
    bool too_long;
    size_t len, last_len;
    char line[AT_LINE_MAX];
    char last[AT_LINE_MAX];
    struct at_parse_result parsed;
    unsigned next;     /* the next command of the parsed line */
    bool busy;         /* a line is being executed */
    bool info_started; /* the running command has begun its information text */
    bool running;      /* inside at_run: at_finish() only records the result */
    int deferred;      /* result recorded by at_finish() while running */
    bool has_deferred;
    /* data mode */
    bool data;
    bool data_urcs; /* URCs pass while in data mode (at_stream_begin) */
    size_t data_want, data_got;
    at_data_fn *data_fn;
    void *data_ctx;
    /* input held while busy, and URCs held while busy */
    uint8_t backlog[AT_BACKLOG_MAX];
    size_t backlog_len;
    char *urc;
    size_t urc_len, urc_cap;
    uint64_t lines, errors, urc_dropped;
    uint64_t dropped; /* host bytes lost because they came before a data-mode prompt */
};

/* Initializes e with cfg (copied). Echo per cfg, V1, Q0, S3=13, S4=10, S5=8. */
void at_init(struct at_engine *e, const struct at_engine_cfg *cfg);

/* Frees what at_init or a run allocated. */
void at_release(struct at_engine *e);

/* Resets the V.250 settings (echo, V, Q, S3-S5) to the defaults, as ATZ / AT&F and a reboot do. */
void at_defaults(struct at_engine *e);

/* Feeds bytes received from the host. Runs complete lines; may call handlers. */
void at_input(struct at_engine *e, const uint8_t *buf, size_t len);

/* Information text of the running command: one line, framed per ATV. */
void at_info(struct at_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void at_vinfo(struct at_engine *e, const char *fmt, va_list ap);

/* Raw bytes to the host, unframed (prompts like "> ", "CONNECT"). */
void at_raw(struct at_engine *e, const void *buf, size_t len);

/* An unsolicited result code, framed "\r\n<text>\r\n"; held until no command runs. */
void at_urc(struct at_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A final result for a command that returned AT_RES_PENDING; continues with the rest of the line. */
void at_finish(struct at_engine *e, int result);

/*
 * Enters data mode from a handler: the next `want` host bytes go to fn(ctx, ...) instead of the
 * line assembler. The handler prints its own prompt (at_raw) and returns AT_RES_PENDING. Bytes
 * the host sent before the prompt (the rest of the command's chunk, input held while busy) are
 * dropped: a host must wait for the prompt.
 */
void at_data_begin(struct at_engine *e, size_t want, at_data_fn *fn, void *ctx);

/*
 * Data mode for a raw stream that follows the command's final result (Quectel FILE:<length>:
 * OK, then the bytes): the same as at_data_begin, but called from a handler that then returns
 * AT_RES_OK, and URCs are written while the bytes come in (the host reads while it sends). The
 * sink's final result is not printed (return AT_RES_SILENT).
 */
void at_stream_begin(struct at_engine *e, size_t want, at_data_fn *fn, void *ctx);

/* Leaves data mode early (a time-out) with a final result (none after at_stream_begin). */
void at_data_end(struct at_engine *e, int result);

/* Prints a final result code now (for handlers that return AT_RES_SILENT). */
void at_result(struct at_engine *e, int result);

/* The command table entry for name, or NULL. */
const struct at_cmd *at_lookup(const struct at_engine *e, const char *name);

/* 0 if the table is sorted and sane, -EINVAL otherwise (tests call it on every table). */
int at_table_check(const struct at_table *t);

#endif
