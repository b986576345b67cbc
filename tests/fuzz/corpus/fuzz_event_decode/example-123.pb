В•йђАЈелВ•Ѕи “ Т-
evalbegingsm8k test, 1319 items, greedy