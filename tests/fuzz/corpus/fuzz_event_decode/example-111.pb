בל€·וכבלעֻÊׂ (0µ ’/
"/workspace/ckpt/final/optimizer.pt‏ÿÿÿÿÿÿÿÿ