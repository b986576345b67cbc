¢Ì÷Õş¶åë¢ÌÏ‘ÉÒ ’i
HF_TOKEN2
canaryhf_c ÀPèŠËëDÍ‹Ì/©*SuÑ†‹a®âÙ‘¥.î ))file:/home/agent/.cache/huggingface/token