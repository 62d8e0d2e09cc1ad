#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json json_of(const uint8_t *text, size_t len) {
    return (json){(const char *)text, (const char *)text + len};
}

static const char *skip_space(const char *at, const char *end) {
    while (at < end && (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r')) at++;
    return at;
}

/* The end of the string that starts at `at` (its opening quote), past the closing quote. */
static const char *skip_string(const char *at, const char *end) {
    for (at++; at < end; at++) {
        if (*at == '\\') at++;
        else if (*at == '"') return at + 1;
    }
    return end;
}

/* The end of the value that starts at `at`. */
static const char *skip_value(const char *at, const char *end) {
    if (at >= end) return end;
    if (*at == '"') return skip_string(at, end);
    if (*at == '{' || *at == '[') {
        int depth = 0;
        while (at < end) {
            if (*at == '"') {
                at = skip_string(at, end);
                continue;
            }
            if (*at == '{' || *at == '[') depth++;
            if (*at == '}' || *at == ']') depth--;
            at++;
            if (depth == 0) break;
        }
        return at;
    }
    while (at < end && *at != ',' && *at != '}' && *at != ']' && *at != ' ' && *at != '\n') at++;
    return at;
}

bool json_each(json object, bool (*each)(json key, json value, void *data), void *data) {
    const char *at = skip_space(object.at, object.end), *end = object.end;
    if (at >= end || *at != '{') return false;
    at = skip_space(at + 1, end);
    while (at < end && *at == '"') {
        json key = {at, skip_string(at, end)};
        at = skip_space(key.end, end);
        if (at >= end || *at != ':') return false;
        at = skip_space(at + 1, end);
        json value = {at, skip_value(at, end)};
        if (!each(key, value, data)) return false;
        at = skip_space(value.end, end);
        if (at < end && *at == ',') at = skip_space(at + 1, end);
    }
    return true;
}

struct lookup {
    const char *key;
    json *value;
    bool found;
};

static bool match_key(json key, json value, void *data) {
    struct lookup *lookup = data;
    size_t len = strlen(lookup->key);
    /* Keys with escapes never match: the keys a plugin looks up are plain. */
    if ((size_t)(key.end - key.at) == len + 2 && memcmp(key.at + 1, lookup->key, len) == 0) {
        *lookup->value = value;
        lookup->found = true;
        return false;
    }
    return true;
}

bool json_member(json object, const char *key, json *value) {
    struct lookup lookup = {key, value, false};
    json_each(object, match_key, &lookup);
    return lookup.found;
}

bool json_is_object(json value) {
    const char *at = skip_space(value.at, value.end);
    return at < value.end && *at == '{';
}

bool json_number(json value, double *number) {
    char text[64];
    size_t len = (size_t)(value.end - value.at);
    if (len == 0 || len >= sizeof text || !(value.at[0] == '-' || (value.at[0] >= '0' && value.at[0] <= '9')))
        return false;
    memcpy(text, value.at, len);
    text[len] = '\0';
    char *rest;
    *number = strtod(text, &rest);
    return *rest == '\0';
}

bool json_string(json value, char *out, size_t cap) {
    if (value.end - value.at < 2 || *value.at != '"' || cap == 0) return false;
    size_t n = 0;
    for (const char *at = value.at + 1; at < value.end - 1 && n + 1 < cap; at++) {
        char c = *at;
        if (c == '\\' && at + 1 < value.end - 1) {
            c = *++at;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

static void reserve(buffer *b, size_t more) {
    if (b->len + more + 1 <= b->cap) return;
    b->cap = (b->len + more + 1) * 2;
    b->text = realloc(b->text, b->cap);
    if (!b->text) abort();
}

void buffer_add(buffer *b, const char *text) {
    size_t len = strlen(text);
    reserve(b, len);
    memcpy(b->text + b->len, text, len + 1);
    b->len += len;
}

void buffer_addf(buffer *b, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    reserve(b, (size_t)len);
    va_start(args, format);
    vsnprintf(b->text + b->len, (size_t)len + 1, format, args);
    va_end(args);
    b->len += (size_t)len;
}

void buffer_add_string(buffer *b, const char *text) {
    buffer_add(b, "\"");
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') buffer_addf(b, "\\%c", *c);
        else if (*c < 0x20) buffer_addf(b, "\\u%04x", *c);
        else buffer_addf(b, "%c", *c);
    }
    buffer_add(b, "\"");
}

void buffer_add_number(buffer *b, bool present, double number) {
    if (!present || isnan(number) || isinf(number)) {
        buffer_add(b, "null");
        return;
    }
    /* The shortest of the two precisions that reads back as the same number. */
    char text[32];
    snprintf(text, sizeof text, "%.15g", number);
    if (strtod(text, NULL) != number) snprintf(text, sizeof text, "%.17g", number);
    buffer_add(b, text);
}
