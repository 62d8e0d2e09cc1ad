/* A condition plugin in C: usage over a limit that depends on the customer's plan.
 *
 * Config: {"limit": 1000, "plans": {"enterprise": 5000}}. The customer's `plan` field picks a
 * limit from `plans`; customers without one get `limit`. Built against klaxon:plugin@0.2.0: the
 * customer's fields arrive typed, and `config-schema` describes the config for a console's form.
 *
 * Build (from the repository's root):
 *     examples/c/build.sh condition examples/c/condition/usage_limit.c usage_limit.wasm
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "condition.h"
#include "json.h"

typedef struct {
    double limit;
    json plans; /* an object of numbers, or empty */
} limits;

static bool is_number(json key, json value, void *data) {
    (void)key, (void)data;
    double ignored;
    return json_number(value, &ignored);
}

/* Reads the config; on a bad one, sets `error` to what is wrong. */
static bool read_limits(const condition_string_t *config, limits *out, const char **error) {
    json root = json_of(config->ptr, config->len), limit;
    if (!json_member(root, "limit", &limit) || !json_number(limit, &out->limit)) {
        *error = "limit: must be a number";
        return false;
    }
    out->plans = (json){0};
    if (json_member(root, "plans", &out->plans) && !json_each(out->plans, is_number, NULL)) {
        *error = "plans: must map plan names to numbers";
        return false;
    }
    return true;
}

/* The customer's `plan` field, when it is text. */
static bool plan_of(const condition_evaluation_t *input, char *plan, size_t cap) {
    if (!input->customer.is_some) return false;
    const klaxon_plugin_types_list_field_t *fields = &input->customer.val.fields;
    for (size_t i = 0; i < fields->len; i++) {
        const klaxon_plugin_types_field_t *field = &fields->ptr[i];
        if (field->name.len == 4 && memcmp(field->name.ptr, "plan", 4) == 0 &&
            field->value.tag == KLAXON_PLUGIN_TYPES_FIELD_VALUE_TEXT && field->value.val.text.len < cap) {
            memcpy(plan, field->value.val.text.ptr, field->value.val.text.len);
            plan[field->value.val.text.len] = '\0';
            return true;
        }
    }
    return false;
}

static condition_string_t text(const char *s) {
    condition_string_t out;
    condition_string_dup(&out, s);
    return out;
}

void exports_condition_config_schema(condition_string_t *ret) {
    *ret = text("{\"type\":\"object\",\"required\":[\"limit\"],\"properties\":{"
                "\"limit\":{\"type\":\"number\",\"description\":\"The limit of customers without a plan in plans\"},"
                "\"plans\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"number\"},"
                "\"description\":\"Limits by the customer's plan field\"}}}");
}

bool exports_condition_validate(condition_string_t *config, condition_string_t *err) {
    limits ignored;
    const char *error;
    bool ok = read_limits(config, &ignored, &error);
    if (!ok) *err = text(error);
    condition_string_free(config);
    return ok;
}

bool exports_condition_evaluate(condition_evaluation_t *input, condition_verdict_t *ret, condition_string_t *err) {
    limits config;
    const char *error = NULL;
    if (!read_limits(&input->config, &config, &error)) {
    } else if (!input->value.is_some) {
        error = "this condition needs a metric: give the rule one";
    } else {
        char plan[64] = "";
        plan_of(input, plan, sizeof plan);
        json plan_limit;
        double limit = config.limit;
        if (plan[0] && json_member(config.plans, plan, &plan_limit)) json_number(plan_limit, &limit);
        double used = input->value.val.current;

        char line[256];
        snprintf(line, sizeof line, "%.*s: %g of %g (%s)", (int)input->scope_key.len, (const char *)input->scope_key.ptr,
                 used, limit, plan[0] ? plan : "no plan");
        condition_string_t message = {(uint8_t *)line, strlen(line)};
        klaxon_plugin_host_log(KLAXON_PLUGIN_HOST_LEVEL_DEBUG, &message);

        bool over = used > limit;
        *ret = (condition_verdict_t){.fire = over, .value = {true, used}};
        ret->severity = (klaxon_plugin_types_option_severity_t){used > 2 * limit, KLAXON_PLUGIN_TYPES_SEVERITY_CRITICAL};
        if (over) {
            snprintf(line, sizeof line, "%g used, over the %s limit of %g", used, plan[0] ? plan : "default", limit);
            ret->message = (condition_option_string_t){true, text(line)};
        }
        char limit_text[32];
        snprintf(limit_text, sizeof limit_text, "%g", limit);
        klaxon_plugin_types_label_t *labels = malloc(2 * sizeof *labels);
        labels[0] = (klaxon_plugin_types_label_t){text("limit"), text(limit_text)};
        labels[1] = (klaxon_plugin_types_label_t){text("plan"), text(plan[0] ? plan : "none")};
        ret->labels = (klaxon_plugin_types_list_label_t){labels, 2};
    }
    if (error) *err = text(error);
    condition_evaluation_free(input);
    return error == NULL;
}
