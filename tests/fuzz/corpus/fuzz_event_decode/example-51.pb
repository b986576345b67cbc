©±Θÿ¶ελ©‰„ΚÒ (0® Ά”® ‹ "/usr/bin/bash*	/bin/bash*-c*Zpython train.py --model /models/Qwen2.5-0.5B --data data/train.jsonl --epochs 1 --out ckpt2
/workspace8θ@θ