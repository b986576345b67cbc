—€üàÜüãë¬šï: (ÿÿÿÿÿÿÿÿÿ0’!º¶Üşÿÿÿÿÿÿÿ•
line
break	tab endâœ“ ğŸ˜€ <æ—¥æœ¬> â€¨d
hÃ©llo "quoted" \back\ slash/line
break	tab end J_„©Îó=b‡¬Ñö@eŠ¯ÔùCh²×ü!Fkµ àÿÿÿÿÿÿÿÿ
âœ“ ğŸ˜€ <æ—¥æœ¬> â€¨/workspace/data/train.jsonlZ
line
break	tab endâœ“ ğŸ˜€ <æ—¥æœ¬> â€¨ Uj´Ùş#Hm’·Ü&Kp•ºß)Ns˜½â,Qv›À ¡€€€€€€