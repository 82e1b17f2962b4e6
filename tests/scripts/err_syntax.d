/* status: 1 */
BEGIN
{
	x = 1 + ;
}
