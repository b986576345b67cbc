าดฬ๓ÿถๅ๋าดคฏสา (0ต ๒-
!/workspace/ckpt/final/config.jsonมค (