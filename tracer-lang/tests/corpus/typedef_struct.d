typedef unsigned long long ull_t;
typedef struct point {
	int x;
	int y;
} point_t;

typedef struct {
	char name[16];
	uint32_t flags, mask;
	struct point *origin;
} record_t;

struct list {
	struct list *next;
	unsigned int value;
};

union word {
	uint32_t u32;
	char bytes[4];
};

enum color { RED, GREEN = 5, BLUE, };
enum { LOW = 1, HIGH = LOW << 4 };
typedef enum { OFF, ON } state_t;

ull_t total;
point_t *where;
const char *label;
struct list *head;

BEGIN
{
	total = (ull_t)sizeof(point_t);
	n = sizeof(struct list);
	o = offsetof(record_t, flags);
	w = sizeof total;
	p = (struct point *)arg0;
	printf("%d %d\n", p->x, (*p).y);
	c = GREEN;
	exit(0);
}
