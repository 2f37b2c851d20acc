/* Small helpers shared by the subcommands' option parsing, and their entry points. */
#ifndef MODTWIN_TOOLS_CLI_H
#define MODTWIN_TOOLS_CLI_H

#include <stddef.h>
#include <stdint.h>

/* Parses a whole decimal integer within [min, max]; 0 or -EINVAL / -ERANGE. */
int cli_parse_long(const char *s, long min, long max, long *out);

/* Parses a size with an optional K/M/G suffix (powers of 1024); 0 or -EINVAL / -ERANGE. */
int cli_parse_size(const char *s, uint64_t max, uint64_t *out);

/* Reads a whole file into a malloc'd buffer; 0 or -errno. */
int cli_read_file(const char *path, uint8_t **buf, size_t *len);

/* Writes a whole file atomically (temp file + rename); 0 or -errno. */
int cli_write_file(const char *path, const void *buf, size_t len);

/* Subcommands; argv[0] is the subcommand's own name. Exit codes 0 ok, 1 failure, 2 usage. */
int ctl_client_main(int argc, char **argv);  /* modtwin ctl */
int image_main(int argc, char **argv);       /* modtwin image */
int pack_main(int argc, char **argv);        /* modtwin pack [inspect|apply] */
int pack_apply_main(int argc, char **argv);  /* modtwin pack apply (argv[0] "apply") */

#endif
