๕฿ํโÿถๅ๋๕฿ลสา (0ต บc
9void at::native::(anonymous namespace)::fused_adam_kernel€ (€08H@P`๙นใÿถๅ๋h๎ใÿถๅ๋p}