/* The subcommands of the ptb program. Each takes (argc, argv) with argv[0] the subcommand name
 * and returns a PTB_EXIT_* code (ptb_cli.h). */
#ifndef PTB_COMMANDS_H
#define PTB_COMMANDS_H

int query_main(int argc, char **argv);     /* forensics/query_cli.c */
int stats_main(int argc, char **argv);     /* forensics/stats_cli.c */
int import_main(int argc, char **argv);    /* runner/import_cli.c */
int export_main(int argc, char **argv);    /* runner/export_cli.c */
int verify_main(int argc, char **argv);    /* runner/verify_cli.c */
int audit_main(int argc, char **argv);     /* runner/audit_cli.c */
int demo_main(int argc, char **argv);      /* runner/demo_cli.c */
int record_main(int argc, char **argv);    /* runner/record_cli.c */
int train_main(int argc, char **argv);     /* runner/train_cli.c */
int eval_main(int argc, char **argv);      /* runner/eval_cli.c */
int demo_task_main(int argc, char **argv); /* runner/demo_task.c */
int run_main(int argc, char **argv);       /* runner/run_cli.c */
int refs_main(int argc, char **argv);      /* runner/refs_cli.c */
int replay_main(int argc, char **argv);    /* runner/replay_cli.c */
int study_main(int argc, char **argv);     /* runner/study_cli.c */

#endif
