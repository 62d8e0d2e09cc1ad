/* A template plugin in C: a compact JSON message for a chat or incident tool. For a cohort
 * rule's notification (klaxon:plugin@0.2.0 passes the cohort), it says who entered and left.
 *
 * Build (from the repository's root):
 *     examples/c/build.sh template examples/c/template/compact_json.c compact_json.wasm
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "template.h"

/* A WIT string's characters as a NUL-terminated copy. */
static char *terminated(const template_string_t *s) {
    char *copy = malloc(s->len + 1);
    memcpy(copy, s->ptr, s->len);
    copy[s->len] = '\0';
    return copy;
}

static template_string_t text(const char *s) {
    template_string_t out;
    template_string_dup(&out, s);
    return out;
}

bool exports_template_render(template_context_t *context, template_payload_t *ret, template_string_t *err) {
    (void)err;
    static const char *states[] = {"evaluating", "ok", "in_alarm"};
    const char *state = states[context->state.current];
    char *rule = terminated(&context->rule.name), *rule_id = terminated(&context->rule.id);
    char *who = context->customer.is_some ? terminated(context->customer.val.name.is_some ? &context->customer.val.name.val
                                                                                          : &context->customer.val.id)
                                          : strdup("all customers");
    char *link = terminated(&context->notification.url);

    buffer headline = {0}, body = {0};
    if (context->cohort.is_some) {
        char *cohort = terminated(&context->cohort.val.name);
        buffer_addf(&headline, "%s: %u entered, %u left", cohort, context->cohort.val.entered_count,
                    context->cohort.val.exited_count);
        free(cohort);
    } else {
        buffer_addf(&headline, "%s: %s for %s", rule, strcmp(state, "ok") == 0 ? "resolved" : "alarm", who);
    }
    buffer_add(&body, "{\"headline\":");
    buffer_add_string(&body, headline.text);
    buffer_add(&body, ",\"state\":");
    buffer_add_string(&body, state);
    buffer_add(&body, ",\"value\":");
    buffer_add_number(&body, context->value.is_some, context->value.val);
    buffer_add(&body, ",\"threshold\":");
    buffer_add_number(&body, context->threshold.is_some, context->threshold.val);
    if (context->cohort.is_some) {
        buffer_addf(&body, ",\"entered\":%u,\"exited\":%u", context->cohort.val.entered_count,
                    context->cohort.val.exited_count);
    }
    buffer_add(&body, ",\"link\":");
    buffer_add_string(&body, link);
    buffer_add(&body, "}");

    /* The body's buffer becomes the payload's string as it is; the bindings free it after. */
    ret->body = (template_string_t){(uint8_t *)body.text, body.len};
    ret->content_type = text("application/json");
    template_tuple2_string_string_t *headers = malloc(sizeof *headers);
    headers[0] = (template_tuple2_string_string_t){text("X-Klaxon-Rule"), text(rule_id)};
    ret->headers = (template_list_tuple2_string_string_t){headers, 1};

    free(headline.text), free(rule), free(rule_id), free(who), free(link);
    template_context_free(context);
    return true;
}
