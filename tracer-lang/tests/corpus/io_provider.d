#pragma D option quiet

io:::start
{
	start[args[0]->b_edev, args[0]->b_blkno] = timestamp;
}

io:::done
/start[args[0]->b_edev, args[0]->b_blkno]/
{
	this->elapsed = timestamp - start[args[0]->b_edev, args[0]->b_blkno];
	@lat[args[1]->dev_statname, args[0]->b_flags & B_READ ? "R" : "W"] =
	    quantize(this->elapsed / 1000);
	@size[args[2]->fi_name] = sum(args[0]->b_bcount);
	start[args[0]->b_edev, args[0]->b_blkno] = 0;
}

END
{
	printa("  %-10s %s\n%@d\n", @lat);
}
