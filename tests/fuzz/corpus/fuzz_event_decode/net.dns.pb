®€üàÜüãëÃšï: (*0’!òõ¯€€€€€€ÑÏ¬ó"line
break	tab end*âœ“ ğŸ˜€ <æ—¥æœ¬> â€¨0ÍÏ¬ó:R
line
break	tab endâœ“ ğŸ˜€ <æ—¥æœ¬> â€¨/workspace/data/train.jsonl ÈÏ¬ó:Y
âœ“ ğŸ˜€ <æ—¥æœ¬> â€¨/workspace/data/train.jsonlhÃ©llo "quoted" \back\ slash/ ÇÏ¬ó