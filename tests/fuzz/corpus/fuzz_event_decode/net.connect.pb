¨€όΰάόγλ½ο: (*0’!Β³εύÿÿÿÿÿÿÿήύÿÿÿÿÿÿÿβ“ π€ <ζ—¥ζ¬> β€¨"%
hΓ©llo "quoted" \back\ slash/ΣΟ¬σ*
line
break	tab endÒΟ¬σ0Βύÿÿÿÿÿÿÿ:β“ π€ <ζ—¥ζ¬> β€¨B/workspace/data/train.jsonl