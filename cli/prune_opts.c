/* Reading the shared pruning options (the training options: train_opts.c). */
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
    pc->spec.crit = (enum sg_criterion)cli_parse_criterion(a);
    pc->spec.seed = (uint64_t)cli_int(a, "prune-seed", 0, 0x7fffffffL);
    pc->include_first = cli_flag(a, "include-first");
    pc->fc = fc_default;
    if (cli_has(a, "fc")) pc->fc = (enum sg_fc_mode)cli_parse_fc(a);
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
