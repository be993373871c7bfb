/* The training options, parsed in one place for every command that trains, and the
 * lists of enum names that --help texts and messages show, built from the library's
 * name tables (an option's help says {criterion}, {augment}, ...; args.c fills in
 * the list). */
#include <string.h>

#include "cli.h"

/* Writes the names of one table, comma separated; 0 if the table is unknown. */
static int names_of(const char *table, char *buf, size_t cap) {
    buf[0] = 0;
#define LIST(COUNT, NAME)                                                                          \
    for (int i = 0; i < (COUNT); i++)                                                              \
        snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? ", " : "", NAME(i));
    if (strcmp(table, "criterion") == 0) {
        LIST(SG_CRIT_COUNT, sg_criterion_name)
    } else if (strcmp(table, "fc") == 0) {
        LIST(SG_FC_COUNT, sg_fc_mode_name)
    } else if (strcmp(table, "schedule") == 0) {
        LIST(SG_LR_SCHEDULE_COUNT, sg_lr_schedule_name)
    } else if (strcmp(table, "augment") == 0) {
        LIST(SG_AUG_COUNT, sg_augment_name)
    } else if (strcmp(table, "format") == 0) {
        LIST(SG_FORMAT_COUNT, sg_format_name)
    } else if (strcmp(table, "engine") == 0) {
        LIST(SG_ENGINE_COUNT, sg_engine_name)
    } else if (strcmp(table, "prune-schedule") == 0) {
        LIST(SG_SCHED_COUNT, sg_schedule_name)
    } else if (strcmp(table, "sparse-kind") == 0) { /* what --kernel/--kind take */
        snprintf(buf, cap, "%s", sg_conv_kind_name(SG_KIND_AUTO));
        for (int i = 0; i < SG_KIND_COUNT; i++)
            if (i != SG_KIND_DENSE && i != SG_KIND_AUTO)
                snprintf(buf + strlen(buf), cap - strlen(buf), ", %s", sg_conv_kind_name(i));
    } else if (strcmp(table, "model") == 0) {
        const char *const *names = sg_model_builtin_names();
        for (int i = 0; names[i]; i++)
            snprintf(buf + strlen(buf), cap - strlen(buf), "%s%s", i ? ", " : "", names[i]);
    } else {
        return 0;
    }
#undef LIST
    return 1;
}

const char *cli_names(const char *table) {
    static char ring[8][256];
    static int at;
    char *b = ring[at++ % 8];
    return names_of(table, b, sizeof ring[0]) ? b : NULL;
}

const char *cli_expand_names(const char *text, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (const char *p = text; *p && o + 1 < cap;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        char key[32], list[256];
        if (close && (size_t)(close - p - 1) < sizeof key) {
            memcpy(key, p + 1, (size_t)(close - p - 1));
            key[close - p - 1] = 0;
            if (names_of(key, list, sizeof list)) {
                o += (size_t)snprintf(buf + o, cap - o, "%s", list);
                if (o >= cap) o = cap - 1;
                p = close + 1;
                continue;
            }
        }
        buf[o++] = *p++;
        buf[o] = 0;
    }
    return buf;
}

/* 1 when the command's option table has option `name`. */
static int has_opt(const struct cli_args *a, const char *name) {
    for (int i = 0; a->opts && a->opts[i].name; i++)
        if (strcmp(a->opts[i].name, name) == 0) return 1;
    return 0;
}

int cli_parse_criterion(const struct cli_args *a) {
    int c = sg_criterion_from_name(cli_str(a, "criterion"));
    if (c < 0)
        cli_usage_error(a, "unknown --criterion '%s' (%s)", cli_str(a, "criterion"),
                        cli_names("criterion"));
    return c;
}

int cli_parse_fc(const struct cli_args *a) {
    int f = sg_fc_mode_from_name(cli_str(a, "fc"));
    if (f < 0) cli_usage_error(a, "unknown --fc '%s' (%s)", cli_str(a, "fc"), cli_names("fc"));
    return f;
}

void cli_train_cfg(const struct cli_args *a, struct sg_train_cfg *tc) {
    sg_train_cfg_default(tc);
    tc->batch = (int)cli_int(a, "batch", 1, 65536);
    /* no --lr and no default: -1, the caller picks the model's (sg_model_default_lr) */
    tc->lr = cli_str(a, "lr") ? (float)cli_num(a, "lr", 0, 100) : -1;
    tc->momentum = (float)cli_num(a, "momentum", 0, 0.9999);
    tc->weight_decay = (float)cli_num(a, "weight-decay", 0, 1);
    int aug = cli_parse_augment(cli_str(a, "augment"));
    if (aug < 0)
        cli_usage_error(a, "unknown --augment '%s' (%s)", cli_str(a, "augment"),
                        cli_names("augment"));
    tc->augment = (enum sg_augment)aug;
    if (has_opt(a, "seed")) tc->seed = (uint64_t)cli_int(a, "seed", 0, 0x7fffffffL);
    if (has_opt(a, "max-images")) tc->max_images = cli_int(a, "max-images", 0, 1L << 31);
    tc->progress = cli_progress_cb;
}

void cli_train_schedule_cfg(const struct cli_args *a, struct sg_train_cfg *tc) {
    tc->epochs = (int)cli_int(a, "epochs", 0, 100000);
    int sch = sg_lr_schedule_from_name(cli_str(a, "schedule"));
    if (sch < 0)
        cli_usage_error(a, "unknown --schedule '%s' (%s)", cli_str(a, "schedule"),
                        cli_names("schedule"));
    tc->schedule = (enum sg_lr_schedule)sch;
    tc->step_every = (int)cli_int(a, "step-every", 1, 100000);
}
