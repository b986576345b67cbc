Õñâ«ÿ¶åëÕñºçÉÒ (0§ úU
/workspace/data/train.jsonl¥¤þ¥¤þ" jj=y^—>.fPÓ$<µÉÜ6WjþuéHB`Ü6(2close8¤