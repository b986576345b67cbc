¥îô¸€·åë¥îÌôÊÒ (	0Ã ºô
Évoid at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3>)À
 (€08H P`ËæÄ¹€·åëh­™Ç¹€·åëp