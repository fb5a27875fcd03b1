/* form.c — form and query parsing (see form.h). */
#include "emulator/form.h"
#include "core/parse.h"

#include <stdlib.h>
#include <string.h>

char *rd_percent_decode(const char *s, size_t len, int plus_is_space)
{
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len && rd_parse_hex_digit(s[i + 1]) >= 0 && rd_parse_hex_digit(s[i + 2]) >= 0) {
            out[j++] = (char)(rd_parse_hex_digit(s[i + 1]) * 16 + rd_parse_hex_digit(s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out[j++] = ' ';
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

rd_status rd_form_parse(const char *text, size_t len, int plus_is_space, rd_form *out)
{
    out->pairs = NULL;
    out->count = 0;
    size_t cap = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && text[i] != '&')
            i++;
        size_t end = i;
        if (i < len)
            i++;
        if (end == start)
            continue;
        const char *eq = memchr(text + start, '=', end - start);
        size_t nlen = eq ? (size_t)(eq - (text + start)) : end - start;
        if (out->count == cap) {
            cap = cap ? cap * 2 : 8;
            rd_form_pair *p = realloc(out->pairs, cap * sizeof *p);
            if (!p) {
                rd_form_free(out);
                return RD_E_INTERNAL;
            }
            out->pairs = p;
        }
        rd_form_pair *p = &out->pairs[out->count];
        p->name = rd_percent_decode(text + start, nlen, plus_is_space);
        p->value = eq ? rd_percent_decode(eq + 1, (size_t)(text + end - eq - 1), plus_is_space) : strdup("");
        if (!p->name || !p->value) {
            free(p->name);
            free(p->value);
            rd_form_free(out);
            return RD_E_INTERNAL;
        }
        out->count++;
    }
    return RD_OK;
}

const char *rd_form_get(const rd_form *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->pairs[i].name, name) == 0)
            return f->pairs[i].value;
    return NULL;
}

int rd_form_has(const rd_form *f, const char *name)
{
    return rd_form_get(f, name) != NULL;
}

void rd_form_free(rd_form *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++) {
        free(f->pairs[i].name);
        free(f->pairs[i].value);
    }
    free(f->pairs);
    f->pairs = NULL;
    f->count = 0;
}
