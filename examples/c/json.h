/* The little JSON a C plugin needs: reading members of the objects Klaxon passes (a rule's
 * config, a customer's fields, an event's properties) and writing a JSON string.
 *
 * A `json` is a view of one value's text inside a larger buffer; nothing is copied or allocated
 * while reading. Klaxon only ever passes well-formed JSON, so the reader checks just enough to
 * stay inside the buffer. */
#ifndef KLAXON_EXAMPLE_JSON_H
#define KLAXON_EXAMPLE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *at;
    const char *end;
} json;

/* The whole of `len` bytes at `text`. */
json json_of(const uint8_t *text, size_t len);

/* The value of `key` in `object`; false when `object` is not an object or has no such key. */
bool json_member(json object, const char *key, json *value);

/* Whether `value` is an object, a number, a string. */
bool json_is_object(json value);
bool json_number(json value, double *number);
/* Copies a string's characters into `out` (at most `cap - 1`, then a NUL), decoding the simple
 * escapes; false when `value` is not a string. */
bool json_string(json value, char *out, size_t cap);

/* Calls `each` for every member of `object` until it answers false; false when `object` is not
 * an object or `each` stopped. */
bool json_each(json object, bool (*each)(json key, json value, void *data), void *data);

/* A growing buffer of text, allocated with malloc (so it can become a WIT string as it is). */
typedef struct {
    char *text;
    size_t len;
    size_t cap;
} buffer;

void buffer_add(buffer *b, const char *text);
void buffer_addf(buffer *b, const char *format, ...);
/* `text` as a quoted JSON string. */
void buffer_add_string(buffer *b, const char *text);
/* A JSON number, or `null` when `present` is false or the number is not finite. */
void buffer_add_number(buffer *b, bool present, double number);

#endif
