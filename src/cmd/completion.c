/*
 * completion.c - `airpack completion bash|zsh`: the shell completion
 * script, generated from the tables the parser itself uses (main.c's
 * command table and each command's getopt_long table), so completion
 * never drifts from the CLI. What an option's value completes to:
 *   --format          the formats the command's usage line lists
 *   --policy          the shipped policy packs (embedded), then files
 *   --prefix, *-dir, --oci-layout, --installed
 *                     directories
 *   anything else     file names (paths are the common case)
 * Short aliases come from the usage text's "-k, --public-key" pairs, the
 * same text `--help` prints. The zsh script loads the bash one through
 * bashcompinit.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "common.h"
#include "data.h"

const char cmd_completion_usage[] =
"usage: airpack completion bash|zsh\n"
    "\n"
    "Print the shell completion script for airpack: commands, each command's\n"
    "options, file names for path arguments, --format values and the shipped\n"
    "policy pack names. Generated from the same command and option tables the\n"
    "parser uses.\n"
    "\n"
    "  bash   source it, or install it as\n"
    "         /usr/share/bash-completion/completions/airpack\n"
    "  zsh    source it from ~/.zshrc (uses bashcompinit)\n"
    "\n"
    "exit status: 0 printed, 2 bad usage\n";

/* The options getopt_long parses; main.c and the completion generator
 * read the same table. */
const struct option cmd_completion_options[] = {
    {NULL, 0, NULL, 0},
};

/* Copy the value list that follows "--format " (or "--format=") in a
 * usage text into out as space-separated words ("text json sarif");
 * empty when the usage names none. */
static void usage_formats(const char *usage, char *out, size_t cap)
{
    const char *p = usage;
    size_t n = 0;

    out[0] = '\0';
    while ((p = strstr(p, "--format")) != NULL) {
        const char *v = p + 8;
        if (*v != ' ' && *v != '=') {
            p = v;
            continue;
        }
        v++;
        /* a list of lowercase words joined by '|' */
        const char *e = v;
        while ((*e >= 'a' && *e <= 'z') || *e == '|' || *e == '-')
            e++;
        if (e > v && memchr(v, '|', (size_t)(e - v))) {
            for (const char *c = v; c < e && n + 1 < cap; c++)
                out[n++] = *c == '|' ? ' ' : *c;
            out[n] = '\0';
            return;
        }
        p = v;
    }
}

/* The short letter the usage text pairs with --name ("  -k, --public-key"),
 * or 0. */
static char usage_short(const char *usage, const char *name)
{
    char pat[96];
    const char *p = usage;
    size_t len;

    if ((size_t)snprintf(pat, sizeof pat, ", --%s", name) >= sizeof pat)
        return 0;
    len = strlen(pat);
    while ((p = strstr(p, pat)) != NULL) {
        char after = p[len];
        if ((after == ' ' || after == '\n' || after == '=' || after == ']') && p - usage >= 2 &&
            p[-2] == '-' && p[-1] != '-')
            return p[-1];
        p += len;
    }
    return 0;
}

static int is_dir_option(const char *name)
{
    size_t n = strlen(name);
    return !strcmp(name, "prefix") || !strcmp(name, "installed") || !strcmp(name, "oci-layout") ||
           (n > 4 && !strcmp(name + n - 4, "-dir"));
}

static void print_packs(FILE *f)
{
    const char *name;
    for (size_t i = 0; (name = ap_data_list("policies", i)) != NULL; i++) {
        const char *dot = strrchr(name, '.');
        fprintf(f, "%s%.*s", i ? " " : "", dot ? (int)(dot - name) : (int)strlen(name), name);
    }
}

/* The case arm of one command: option values, option names, then files. */
static void bash_command(FILE *f, const struct command *c)
{
    char formats[128];
    const struct option *o;

    usage_formats(c->usage, formats, sizeof formats);
    fprintf(f, "    %s)\n        case \"$prev\" in\n", c->name);
    for (o = c->options; o && o->name; o++) {
        char s;
        if (o->has_arg != required_argument)
            continue;
        s = usage_short(c->usage, o->name);
        fprintf(f, "        --%s", o->name);
        if (s)
            fprintf(f, "|-%c", s);
        if (!strcmp(o->name, "format") && formats[0])
            fprintf(f, ") _airpack_words \"%s\"; return ;;\n", formats);
        else if (!strcmp(o->name, "policy")) {
            fputs(") _airpack_words \"", f);
            print_packs(f);
            fputs("\"; _airpack_files; return ;;\n", f);
        } else if (is_dir_option(o->name))
            fputs(") _airpack_dirs; return ;;\n", f);
        else
            fputs(") _airpack_files; return ;;\n", f);
    }
    fputs("        esac\n        case \"$cur\" in\n        -*) _airpack_words \"--help", f);
    for (o = c->options; o && o->name; o++)
        fprintf(f, " --%s", o->name);
    fputs("\"; return ;;\n        esac\n        _airpack_files ;;\n", f);
}

static void print_bash(FILE *f)
{
    size_t n;
    const struct command *t = cmd_table(&n);

    fputs("# bash completion for airpack. Generated by `airpack completion bash` from\n"
          "# the command and option tables the parser uses; do not edit.\n"
          "_airpack_words() { local IFS=$' \\t\\n'; "
          "COMPREPLY+=( $(compgen -W \"$1\" -- \"$cur\") ); }\n"
          "_airpack_files() { local IFS=$'\\n'; COMPREPLY+=( $(compgen -f -- \"$cur\") ); "
          "compopt -o filenames 2>/dev/null || true; }\n"
          "_airpack_dirs() { local IFS=$'\\n'; COMPREPLY+=( $(compgen -d -- \"$cur\") ); "
          "compopt -o filenames 2>/dev/null || true; }\n"
          "_airpack() {\n"
          "    local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"\"\n"
          "    COMPREPLY=()\n"
          "    [ \"$COMP_CWORD\" -gt 0 ] && prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
          "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
          "        _airpack_words \"help --help --version",
          f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, " %s", t[i].name);
    fputs("\"\n        return\n    fi\n    case \"${COMP_WORDS[1]}\" in\n    help)\n"
          "        [ \"$COMP_CWORD\" -eq 2 ] && _airpack_words \"",
          f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? " " : "", t[i].name);
    fputs("\" ;;\n", f);
    for (size_t i = 0; i < n; i++)
        bash_command(f, &t[i]);
    fputs("    esac\n}\ncomplete -F _airpack airpack\n", f);
}

int cmd_completion(int argc, char **argv)
{
    int c;

    optind = 1;
    while ((c = getopt_long(argc, argv, "", cmd_completion_options, NULL)) != -1)
        return cli_usage_error("completion", "unknown option");
    if (argc - optind != 1)
        return cli_usage_error("completion", "name one shell: bash or zsh");
    if (!strcmp(argv[optind], "bash")) {
        print_bash(stdout);
    } else if (!strcmp(argv[optind], "zsh")) {
        fputs("# zsh completion for airpack: the bash completion through bashcompinit.\n"
              "autoload -U +X bashcompinit && bashcompinit\n",
              stdout);
        print_bash(stdout);
    } else {
        return cli_usage_error("completion", "unknown shell '%s' (bash or zsh)", argv[optind]);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the completion script");
        return 2;
    }
    return 0;
}
