/* Reading the shared pruning and training options. */
#include <string.h>

#include "cli.h"

void cli_prune_cfg(const struct cli_args *a, struct sg_prune_cfg *pc, enum sg_fc_mode fc_default,
                   struct sg_profile **profile_out) {
    sg_prune_cfg_default(pc);
    if (sg_prune_spec_parse(cli_str(a, "granularity"), &pc->spec) != SG_OK)
        cli_usage_error(a, "%s", sg_last_error());
    const char *axis = cli_str(a, "vector-axis");
    if (strcmp(axis, "row") && strcmp(axis, "col"))
        cli_usage_error(a, "--vector-axis must be row or col, not '%s'", axis);
    if (pc->spec.gran == SG_GRAN_VECTOR && cli_has(a, "vector-axis"))
        pc->spec.vector_cols = strcmp(axis, "col") == 0;
    int c = sg_criterion_from_name(cli_str(a, "criterion"));
    if (c < 0)
        cli_usage_error(a, "unknown --criterion '%s' (l1, l2, max, mean, random)",
                        cli_str(a, "criterion"));
    pc->spec.crit = (enum sg_criterion)c;
    pc->spec.seed = (uint64_t)cli_int(a, "prune-seed", 0, 0x7fffffffL);
    pc->include_first = cli_flag(a, "include-first");
    pc->fc = fc_default;
    if (cli_has(a, "fc")) {
        int f = sg_fc_mode_from_name(cli_str(a, "fc"));
        if (f < 0) cli_usage_error(a, "unknown --fc '%s' (dense, fine, same)", cli_str(a, "fc"));
        pc->fc = (enum sg_fc_mode)f;
    }
    int s = sg_selection_from_name(cli_str(a, "selection"));
    if (s < 0 || s == SG_SEL_PROFILE)
        cli_usage_error(a, "unknown --selection '%s' (layer, global; --profile FILE for a profile)",
                        cli_str(a, "selection"));
    pc->sel = (enum sg_selection)s;
    if (profile_out) *profile_out = NULL;
    if (cli_has(a, "profile")) {
        struct sg_profile *p;
        if (sg_profile_load(cli_str(a, "profile"), &p) != SG_OK) {
            cli_fail_status(SG_ERR_FORMAT);
            exit(1);
        }
        pc->sel = SG_SEL_PROFILE;
        pc->profile = p;
        if (profile_out) *profile_out = p;
    }
}

void cli_train_cfg(const struct cli_args *a, struct sg_train_cfg *tc) {
    sg_train_cfg_default(tc);
    tc->batch = (int)cli_int(a, "batch", 1, 65536);
    tc->lr = (float)cli_num(a, "lr", 0, 100);
    tc->momentum = (float)cli_num(a, "momentum", 0, 0.9999);
    tc->weight_decay = (float)cli_num(a, "weight-decay", 0, 1);
    int aug = cli_parse_augment(cli_str(a, "augment"));
    if (aug < 0)
        cli_usage_error(a, "unknown --augment '%s' (none, shift, flip, shift+flip)",
                        cli_str(a, "augment"));
    tc->augment = (enum sg_augment)aug;
    tc->max_images = cli_int(a, "max-images", 0, 1L << 31);
    tc->progress = cli_progress_cb;
}
