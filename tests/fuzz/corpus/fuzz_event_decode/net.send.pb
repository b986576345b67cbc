«€üàÜüãëÀšï: (ÿÿÿÿÿÿÿÿÿ0’!Ú´ĞıÿÿÿÿÿÿÿÉıÿÿÿÿÿÿÿline
break	tab end"#
/workspace/data/train.jsonlĞÏ¬ó*%
hÃ©llo "quoted" \back\ slash/ÏÏ¬ó0­ıÿÿÿÿÿÿÿ:line
break	tab endBâœ“ ğŸ˜€ <æ—¥æœ¬> â€¨