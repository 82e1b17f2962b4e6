#pragma D option quiet

python$target:::function-entry
{
	self->depth++;
	printf("%*s-> %s:%s:%d\n", self->depth * 2, "", copyinstr(arg0),
	    copyinstr(arg1), arg2);
}

python$target:::function-return
/self->depth > 0/
{
	printf("%*s<- %s\n", self->depth * 2, "", copyinstr(arg1));
	self->depth--;
}

python*:::gc-start
{
	self->gc = timestamp;
}

python*:::gc-done
/self->gc/
{
	@gc[pid] = quantize(timestamp - self->gc);
	self->gc = 0;
}
