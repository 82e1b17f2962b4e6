profile-997
/pid != 0/
{
	@[stack()] = count();
}
