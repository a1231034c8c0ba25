/* SPDX-License-Identifier: MIT */
/*
 * unit.h - the main() of every CUnit test binary: a watchdog alarm, the
 * suites registered and run verbosely, exit 0 only if nothing failed.
 */
#ifndef UNIT_H
#define UNIT_H

#include <stdio.h>
#include <unistd.h>

#include <CUnit/Basic.h>

/*
 * Run suites under an alarm of alarm_s seconds (a hang fails instead of
 * stalling).  Return 0 if every test passed, 1 otherwise.
 */
static inline int
unit_run(const char *name, CU_SuiteInfo *suites, unsigned alarm_s)
{
    unsigned int failures;
    int          err;

    alarm(alarm_s);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    if (CU_register_suites(suites) != CUE_SUCCESS) {
        fprintf(stderr, "%s: %s\n", name, CU_get_error_msg());
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    err = CU_basic_run_tests() != CUE_SUCCESS || CU_get_error() != CUE_SUCCESS;
    failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    return err || failures != 0 ? 1 : 0;
}

#endif /* UNIT_H */
