€üàÜüãë¥šï: (*0’!‚˜
hÃ©llo "quoted" \back\ slash/line
break	tab endâœ“ ğŸ˜€ <æ—¥æœ¬> â€¨"/workspace/data/train.jsonl*hÃ©llo "quoted" \back\ slash/2line
break	tab end:âœ“ ğŸ˜€ <æ—¥æœ¬> â€¨@éÏ¬óJhÃ©llo "quoted" \back\ slash/Jline
break	tab endP™€€€€€€€€Zâœ“ ğŸ˜€ <æ—¥æœ¬> â€¨