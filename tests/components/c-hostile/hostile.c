/* A C condition that misbehaves on purpose, as its config says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "condition.h"
#include "json.h"

/* Where the hoard is kept: a pointer that escapes, so the compiler cannot leave out the
 * allocation. */
static char *volatile hoard;

/* Built with -DSCHEMA_NOT_JSON, it publishes a config schema that is not JSON, which an upload
 * must refuse. */
void exports_condition_config_schema(condition_string_t *ret) {
#ifdef SCHEMA_NOT_JSON
    condition_string_dup(ret, "{type: object");
#else
    condition_string_dup(ret, "{\"type\":\"object\"}");
#endif
}

bool exports_condition_validate(condition_string_t *config, condition_string_t *err) {
    (void)err;
    condition_string_free(config);
    return true;
}

bool exports_condition_evaluate(condition_evaluation_t *input, condition_verdict_t *ret, condition_string_t *err) {
    char behaviour[64] = "";
    json value;
    if (json_member(json_of(input->config.ptr, input->config.len), "behaviour", &value))
        json_string(value, behaviour, sizeof behaviour);
    condition_evaluation_free(input);
    if (strcmp(behaviour, "infinite-loop") == 0) {
        for (volatile unsigned long n = 0;; n++) {
        }
    }
    if (strcmp(behaviour, "memory-bomb") == 0) {
        size_t size = (size_t)1 << 30;
        hoard = malloc(size);
        if (!hoard) abort();
        memset(hoard, 1, size);
        *ret = (condition_verdict_t){.fire = true, .value = {true, (double)size}};
        return true;
    }
    char message[128];
    snprintf(message, sizeof message, "unknown behaviour '%s'", behaviour);
    condition_string_dup(err, message);
    return false;
}
